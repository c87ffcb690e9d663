namespace TcpFreeze.Resume;

/// <summary>
/// What a thaw does for the connections it released, after the map writes (<see cref="FreezerMaps.Thaw"/>, which
/// also takes the segments the programs kept for them under the thaw's pin lock): the peers' sequence numbers another
/// host recorded, and the kick itself (ICMP messages, then the replay of the kept segments).
/// </summary>
internal static class ThawKick
{
    /// <summary>
    /// Fills in the peer's sequence number from elsewhere for released entries whose peer this
    /// host saw no data from. How long the peer has backed off is not known here, so it gets the
    /// most messages a direction gets (each one beyond its back-off changes nothing).
    /// </summary>
    public static void WithPeerSequences(List<(ConnectionKey Key, FreezeEntry Entry)> released, IReadOnlyDictionary<ConnectionKey, uint> peerSequences)
    {
        for (int i = 0; i < released.Count; i++)
        {
            (ConnectionKey key, FreezeEntry entry) = released[i];
            if (entry.RemoteDataDrops != 0 || !peerSequences.TryGetValue(key, out uint sequence))
                continue;
            released[i] = (key, entry.WithRemoteSequence(sequence, ResumeKick.MaxPacketsPerDirection));
        }
    }

    /// <summary>
    /// Sends the resume kick for connections a thaw released, in namespace <paramref name="ns"/> (after the pin lock
    /// is let go: it only sends); <paramref name="pinDirectory"/> names the frozen set in telemetry.
    /// </summary>
    public static KickResult Send(NetworkNamespace ns, string pinDirectory, List<(ConnectionKey Key, FreezeEntry Entry)> released, TakenReplays replays,
        SegmentsFromElsewhere elsewhere)
    {
        if (released.Count == 0)
            return KickResult.None;
        List<ReplayPacket> replay = SegmentReplay.Plan(released, replays, elsewhere);
        KickPlan plan = ResumeKick.Plan(released,
            replay.Count == 0 ? null : replay.Where(r => !r.ToPeer).Select(r => r.Key).ToHashSet(),
            replay.Count == 0 ? null : replay.Where(r => r.ToPeer).Select(r => r.Key).ToHashSet());
        if (plan.Messages.Count == 0 && replay.Count == 0)
            return KickResult.None;
        using Telemetry.Operation operation = Telemetry.Start("kick", pinDirectory);
        // The ICMP messages first, the replay right after (microseconds apart): a peer that gets
        // the message meets it while still backing off, as without the replay, so what it sees
        // (one error with IP_RECVERR) does not depend on which arrives first; the replay's ACK
        // then reaches every peer, ICMP or not. A replayed segment the receiver has meanwhile
        // had from its sender's own retransmission is a duplicate its stack drops.
        ReplayOutcome Replay()
        {
            ReplayOutcome outcome = replay.Count == 0 ? default : SegmentReplay.Send(ns, replay);
            operation.Tag("tcpfreeze.replay.segments", outcome.PeerSegments);
            operation.Tag("tcpfreeze.replay.local_segments", outcome.LocalSegments);
            return outcome;
        }
        KickResult result = KickResult.None;
        if (plan.Messages.Count > 0)
        {
            try
            {
                result = ResumeKick.Send(ns, plan);
                operation.Tag("tcpfreeze.kick.messages", result.PacketsSent);
                Telemetry.KickMessages.Add(result.PacketsSent, new KeyValuePair<string, object?>(TcpFreezeTelemetry.PinDirectoryTag, pinDirectory));
            }
            catch (Exception e) when (e is TcpFreezeException or System.Net.Sockets.SocketException)
            {
                // The thaw is done; a kick that cannot be sent must not make it look failed.
                operation.Fail(e);
                result = new KickResult(0, 0, plan.Messages.Count) { Error = e.Message };
            }
        }
        ReplayOutcome replayed = Replay();
        return result with
        {
            SegmentsReplayed = replayed.PeerSegments,
            LocalSegmentsReplayed = replayed.LocalSegments,
            ReplayFailed = replayed.Failed,
            Error = result.Error ?? replayed.Error,
        };
    }
}
