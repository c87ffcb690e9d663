using Interop;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Win32.SafeHandles;
using TcpFreeze.CriuHooks.Interop;
using TcpFreeze.Native;

namespace TcpFreeze.CriuHooks;

/// <summary>
/// What the dump side froze, written into CRIU's images directory so it travels with
/// the images: the restore side freezes exactly these before any socket is restored
/// and thaws exactly these once the tasks are back.
/// </summary>
public sealed record FreezeManifest
{
    /// <summary>The file name inside the images directory.</summary>
    public const string FileName = "tcpfreeze-manifest.json";

    /// <summary>The format version this code writes and reads.</summary>
    public const int CurrentVersion = 1;

    /// <summary>Format version; required in the file, so that "{}" is not taken for an empty manifest.</summary>
    [JsonRequired]
    public int Version { get; init; } = CurrentVersion;

    /// <summary>When the dump side froze the connections (UTC, ISO 8601).</summary>
    public string CreatedUtc { get; init; } = DateTime.UtcNow.ToString("O");

    /// <summary>The root task that was dumped.</summary>
    public int InitPid { get; init; }

    /// <summary>The lease the dump side used, in seconds.</summary>
    public double LeaseSeconds { get; init; }

    /// <summary>
    /// True when the dumped tree had a network namespace of its own: the hook locks that
    /// namespace as a whole (an nft table, the hook's namespace lock) and freezes no connection, so the
    /// restore side has nothing to freeze or thaw per connection either.
    /// </summary>
    public bool OwnNetworkNamespace { get; init; }

    /// <summary>
    /// The dump side's boot (/proc/sys/kernel/random/boot_id); with
    /// <see cref="NetworkNamespaceCookie"/> it tells the restore side whether it runs where
    /// the dump froze the connections, so that it can notice a freeze that was lost
    /// meanwhile. Null in manifests written before it was recorded.
    /// </summary>
    public string? BootId { get; init; }

    /// <summary>The dump side's network namespace cookie (never reused within a boot); 0 when unknown.</summary>
    public ulong NetworkNamespaceCookie { get; init; }

    /// <summary>Frozen connections, "LOCAL -> REMOTE".</summary>
    public IReadOnlyList<string> Connections { get; init; } = [];

    /// <summary>Frozen listening endpoints, "ADDRESS:PORT".</summary>
    public IReadOnlyList<string> Endpoints { get; init; } = [];

    /// <summary>
    /// For connections whose peer had a data segment dropped on the dump side by post-dump:
    /// "LOCAL -> REMOTE" to the peer's sequence number (<see cref="FrozenConnection.PeerSequence"/>).
    /// A restore on another host kicks with them at pre-resume, since its own programs only see
    /// the peers' retransmissions that arrive after its pre-restore. Optional (null in older
    /// manifests); entries for connections not in <see cref="Connections"/> are ignored.
    /// </summary>
    public IReadOnlyDictionary<string, uint>? PeerSequences { get; init; }

    /// <summary>The peer sequences as keys; malformed entries are skipped (they only ever speed a connection up).</summary>
    public Dictionary<ConnectionKey, uint> PeerSequenceKeys()
    {
        var result = new Dictionary<ConnectionKey, uint>();
        foreach ((string text, uint sequence) in PeerSequences ?? new Dictionary<string, uint>())
            if (text is not null && ConnectionKey.TryParse(text, null, out ConnectionKey key))
                result[key] = sequence;
        return result;
    }

    /// <summary>
    /// For connections whose peer had a data segment dropped on the dump side: "LOCAL -> REMOTE" to
    /// the peer's last dropped segment as the dump host's programs kept it (the packet's first bytes,
    /// base64 in the file, and the whole packet's IP length). A restore on another host replays it
    /// at pre-resume when its own programs recorded none (see RESUME.md), so that a peer that drops
    /// ICMP resumes at once there too. Optional (null in older manifests); entries for connections
    /// not in <see cref="Connections"/> are ignored. Bounded by <see cref="MaximumPeerSegmentBytes"/>.
    /// </summary>
    public IReadOnlyDictionary<string, PeerSegment>? PeerSegments { get; init; }

    /// <summary>
    /// The mirror of <see cref="PeerSegments"/>: for connections whose local socket had a data segment
    /// dropped on the dump side (a reply the freeze caught on its way out), "LOCAL -> REMOTE" to that
    /// segment as the dump host's egress program kept it. A restore on another host sends it to the
    /// peer at pre-resume when its own programs recorded none: the restored socket would resend those
    /// bytes only on its fresh 1 s timer, and no ICMP shortens a timer that has not backed off.
    /// Optional (null in older manifests); entries for connections not in <see cref="Connections"/> are
    /// ignored. Bounded as <see cref="PeerSegments"/> is, by a budget of its own of the same size
    /// (<see cref="MaximumPeerSegmentBytes"/>): one segment per connection and direction.
    /// </summary>
    public IReadOnlyDictionary<string, PeerSegment>? LocalSegments { get; init; }

    /// <summary>
    /// The most packet bytes <see cref="PeerSegments"/> holds in all, and <see cref="LocalSegments"/> too:
    /// 8 MiB each, about 11 MiB of base64, so that a manifest with both (each segment at most
    /// <see cref="PeerSegment.MaxBytes"/>: 4,096 full ones each) and 16,000 connections (1 MiB) stays
    /// far below <see cref="MaximumFileSize"/>.
    /// The writer keeps segments in the order of <see cref="Connections"/> until the budget is
    /// spent (the rest resume by the kick or their own retransmission); the reader refuses more.
    /// </summary>
    public const int MaximumPeerSegmentBytes = 8 << 20;

    /// <summary>
    /// The segments for <see cref="PeerSegments"/> (or, given the local sockets' segments,
    /// <see cref="LocalSegments"/>): those of <paramref name="connections"/>, in that order, while they
    /// fit in <see cref="MaximumPeerSegmentBytes"/>; a segment the reader would refuse is left out.
    /// </summary>
    public static Dictionary<string, PeerSegment> BoundedPeerSegments(IEnumerable<ConnectionKey> connections,
        IReadOnlyDictionary<ConnectionKey, PeerSegment> segments)
    {
        var result = new Dictionary<string, PeerSegment>();
        long budget = MaximumPeerSegmentBytes;
        foreach (ConnectionKey key in connections)
        {
            if (!segments.TryGetValue(key, out PeerSegment? segment) || SegmentFault(segment) is not null || segment.Packet.Length > budget)
                continue;
            if (result.TryAdd(key.ToString(), segment))
                budget -= segment.Packet.Length;
        }
        return result;
    }

    /// <summary>What is wrong with a recorded segment, or null when it is one the programs could have kept.</summary>
    private static string? SegmentFault(PeerSegment? segment) => segment switch
    {
        null => "null instead of a segment",
        { Packet: null } => "no packet",
        { Packet.Length: 0 } => "an empty packet",
        { Packet.Length: > PeerSegment.MaxBytes } => $"{segment.Packet.Length:N0} packet bytes, more than the {PeerSegment.MaxBytes:N0} the programs keep",
        { IpLength: > ushort.MaxValue } => $"an IP length of {segment.IpLength:N0}, more than any IP packet",
        _ when segment.IpLength < segment.Packet.Length => $"an IP length of {segment.IpLength:N0}, less than its {segment.Packet.Length:N0} packet bytes",
        _ => null,
    };

    /// <summary>The peer segments of connections this manifest lists, as keys (validated by <see cref="Read(string)"/>).</summary>
    public Dictionary<ConnectionKey, PeerSegment> PeerSegmentKeys() => SegmentKeys(PeerSegments);

    /// <summary>The local sockets' segments of connections this manifest lists, as keys (validated by <see cref="Read(string)"/>).</summary>
    public Dictionary<ConnectionKey, PeerSegment> LocalSegmentKeys() => SegmentKeys(LocalSegments);

    private Dictionary<ConnectionKey, PeerSegment> SegmentKeys(IReadOnlyDictionary<string, PeerSegment>? segments)
    {
        var result = new Dictionary<ConnectionKey, PeerSegment>();
        if (segments is null || segments.Count == 0)
            return result;
        HashSet<ConnectionKey> listed = [.. ConnectionKeys()];
        foreach ((string text, PeerSegment segment) in segments)
            if (text is not null && SegmentFault(segment) is null && ConnectionKey.TryParse(text, null, out ConnectionKey key) && listed.Contains(key))
                result[key] = segment;
        return result;
    }

    /// <summary>Builds a manifest from keys.</summary>
    public static FreezeManifest Create(int initPid, TimeSpan lease, IEnumerable<ConnectionKey> connections, IEnumerable<EndpointKey> endpoints)
        => new()
        {
            InitPid = initPid,
            LeaseSeconds = lease.TotalSeconds,
            BootId = CurrentBootId(),
            NetworkNamespaceCookie = NetworkNamespace.Current.Cookie,
            Connections = connections.Select(c => c.ToString()).ToArray(),
            Endpoints = endpoints.Select(e => e.ToString()).ToArray(),
        };

    /// <summary>This machine's boot id, or null when it cannot be read.</summary>
    public static string? CurrentBootId()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Whether the dump recorded in this manifest froze its connections in <paramref name="ns"/> of this boot.</summary>
    public bool WasDumpedIn(NetworkNamespace ns)
    {
        ArgumentNullException.ThrowIfNull(ns);
        return BootId is not null && NetworkNamespaceCookie != 0 && BootId == CurrentBootId() && NetworkNamespaceCookie == ns.Cookie;
    }

    // Parsed once per list: a step reads the keys more than once (validation, freeze or thaw, a
    // comparison), and at 10,000 connections parsing is milliseconds. Each cache remembers the list
    // it came from, so a copy made with `with { Connections = ... }` never sees a stale one.
    private (IReadOnlyList<string> Source, ConnectionKey[] Keys)? _connectionKeys;
    private (IReadOnlyList<string> Source, EndpointKey[] Keys)? _endpointKeys;

    /// <summary>The connections as keys (parsed once per list; do not modify the array).</summary>
    public ConnectionKey[] ConnectionKeys()
    {
        if (_connectionKeys is { } cached && ReferenceEquals(cached.Source, Connections))
            return cached.Keys;
        IReadOnlyList<string> source = Connections;
        var keys = new ConnectionKey[source.Count];
        for (int i = 0; i < keys.Length; i++)
            keys[i] = ConnectionKey.Parse(source[i]);
        _connectionKeys = (source, keys);
        return keys;
    }

    /// <summary>The endpoints as keys (parsed once per list; do not modify the array).</summary>
    public EndpointKey[] EndpointKeys()
    {
        if (_endpointKeys is { } cached && ReferenceEquals(cached.Source, Endpoints))
            return cached.Keys;
        IReadOnlyList<string> source = Endpoints;
        var keys = new EndpointKey[source.Count];
        for (int i = 0; i < keys.Length; i++)
            keys[i] = EndpointKey.Parse(source[i]);
        _endpointKeys = (source, keys);
        return keys;
    }

    /// <summary>Writes the manifest into <paramref name="imageDirectory"/> atomically (temporary file, then rename).</summary>
    public void Write(string imageDirectory) => Write(imageDirectory, FileName);

    /// <summary>
    /// Writes the manifest as <paramref name="fileName"/> in <paramref name="directory"/> atomically.
    /// The images directory is not ours alone, so the temporary file has a fresh random name
    /// and is created with O_CREAT|O_EXCL (<see cref="FileMode.CreateNew"/>): a file or a link
    /// planted there is never reused or followed. rename(2) then replaces the manifest's name
    /// itself, never what a link of that name points to.
    /// </summary>
    public void Write(string directory, string fileName) => WriteJson(directory, fileName, ToJson());

    /// <summary>The manifest as UTF-8 JSON, as <see cref="Write(string)"/> writes it: serialize once when it goes to several places.</summary>
    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, s_writer.FreezeManifest);

    /// <summary>
    /// The writer: keys as ConnectionKey writes them, "198.18.0.1:80 -> 198.18.0.2:40000", not "-\u003E" (the default
    /// encoder escapes what matters inside HTML; the manifest is never put in a page). The format is unchanged: every
    /// JSON reader, the older hooks' included, decodes both spellings to the same string.
    /// </summary>
    private static readonly ManifestJson s_writer = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    /// <summary>Writes <paramref name="json"/> (from <see cref="ToJson"/>) as <paramref name="fileName"/> in <paramref name="directory"/>, atomically as <see cref="Write(string, string)"/>.</summary>
    internal static void WriteJson(string directory, string fileName, byte[] json)
    {
        string path = Path.Combine(directory, fileName);
        // Guid.NewGuid draws from the kernel's random source; RandomNumberGenerator would load and
        // initialise OpenSSL first (a few ms at every step). The name only has to be unguessable:
        // O_EXCL below is what makes a planted file harmless.
        string temporary = Path.Combine(directory, $".{fileName}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (FileStream stream = new(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(json);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: a leftover temporary file is never read.
        }
    }

    /// <summary>
    /// The largest manifest the reader accepts: a real one is about 60 bytes per connection
    /// (1 MiB at 16,000), so this is far above any, and it bounds what a hostile file costs.
    /// </summary>
    public const long MaximumFileSize = 64L << 20;

    /// <summary>Reads and validates the manifest in <paramref name="imageDirectory"/>.</summary>
    /// <remarks>Fields this version does not know are ignored, so a newer writer can add some.</remarks>
    /// <exception cref="InvalidDataException">It is missing, unreadable or malformed; the message says which and what to do.</exception>
    public static FreezeManifest Read(string imageDirectory) => Read(imageDirectory, FileName);

    /// <summary>Reads and validates the manifest file <paramref name="fileName"/> in <paramref name="directory"/>.</summary>
    /// <remarks>
    /// The file name is ours, so it is opened without following a link (O_NOFOLLOW) and without
    /// blocking (O_NONBLOCK: a FIFO would otherwise hang the restore), and read only when it is
    /// a regular file of at most <see cref="MaximumFileSize"/> bytes (a link to /dev/zero would
    /// otherwise grow the hook until it runs out of memory).
    /// </remarks>
    public static FreezeManifest Read(string directory, string fileName)
    {
        byte[] bytes = ReadRegularFile(Path.Combine(directory, fileName));
        if (Recall(bytes) is { } known)
            return known;
        FreezeManifest manifest = Parse(bytes);
        Remember(bytes, manifest);
        return manifest;
    }

    private static readonly Lock RecentLock = new();
    private static readonly LinkedList<(byte[] Bytes, FreezeManifest Manifest)> Recent = new();

    /// <summary>How many manifests a process remembers: a dump's and a restore's at once, and the state files beside them.</summary>
    private const int RecentCapacity = 4;

    /// <summary>At most this many bytes of them (a resident agent keeps them between migrations): 10,000 connections with their segments take a few MiB.</summary>
    private const long RecentBytes = 32L << 20;

    /// <summary>
    /// A manifest recently read or written by this process, if <paramref name="bytes"/> are its very bytes: a
    /// resident agent reads at pre-restore what it wrote at post-dump, and at pre-resume what it read at
    /// pre-restore (1,500 connections with their segments: a few milliseconds of parsing, inside the downtime).
    /// The file is still read each time; only identical content skips the parse and its checks, which it passed.
    /// </summary>
    private static FreezeManifest? Recall(byte[] bytes)
    {
        lock (RecentLock)
            for (LinkedListNode<(byte[] Bytes, FreezeManifest Manifest)>? node = Recent.First; node is not null; node = node.Next)
                if (node.Value.Bytes.AsSpan().SequenceEqual(bytes))
                {
                    Recent.Remove(node);
                    Recent.AddFirst(node);
                    return node.Value.Manifest;
                }
        return null;
    }

    /// <summary>Keeps <paramref name="manifest"/> as what <paramref name="bytes"/> hold (see <see cref="Recall"/>).</summary>
    internal static void Remember(byte[] bytes, FreezeManifest manifest)
    {
        lock (RecentLock)
        {
            if (bytes.Length > RecentBytes)
                return;
            Recent.AddFirst((bytes, manifest));
            long total = Recent.Sum(r => (long)r.Bytes.Length);
            while (Recent.Count > RecentCapacity || total > RecentBytes)
            {
                total -= Recent.Last!.Value.Bytes.Length;
                Recent.RemoveLast();
            }
        }
    }

    /// <summary>The bytes <paramref name="manifest"/> was read from or written as, if this process still remembers them; else its JSON afresh.</summary>
    internal static byte[] BytesOf(FreezeManifest manifest)
    {
        lock (RecentLock)
            foreach ((byte[] bytes, FreezeManifest known) in Recent)
                if (ReferenceEquals(known, manifest))
                    return bytes;
        return manifest.ToJson();
    }

    private static FreezeManifest Parse(byte[] bytes)
    {
        if (bytes.AsSpan().Trim(" \t\r\n"u8).IsEmpty)
            throw new InvalidDataException($"{FileName} is empty (was the dump interrupted while writing it?); refusing to restore without knowing what to freeze");
        FreezeManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize(bytes, ManifestJson.Default.FreezeManifest);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{FileName} is corrupt ({e.Message}); refusing to restore without knowing what to freeze", e);
        }
        if (manifest is null)
            throw new InvalidDataException($"{FileName} holds JSON null, not a manifest; refusing to restore without knowing what to freeze");
        if (manifest.Version != CurrentVersion)
            throw new InvalidDataException($"{FileName} has format version {manifest.Version}; this hook reads version {CurrentVersion}");
        // JSON can say "connections": null or hold a null element; both would fail later, far from the cause.
        if (manifest.Connections is null || manifest.Endpoints is null || manifest.Connections.Contains(null!) || manifest.Endpoints.Contains(null!))
            throw new InvalidDataException($"{FileName} is corrupt: its connections and endpoints must be lists of strings");
        try
        {
            _ = manifest.ConnectionKeys();
            _ = manifest.EndpointKeys();
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new InvalidDataException($"{FileName} is corrupt: {e.Message}", e);
        }
        ValidateSegments(manifest.PeerSegments, "peer");
        ValidateSegments(manifest.LocalSegments, "local");
        return manifest;
    }

    /// <summary>
    /// Refuses peer (or local) segments that the dump host's programs could not have kept (each at most
    /// <see cref="PeerSegment.MaxBytes"/> of a packet no longer than its IP length), keys that
    /// are not connections, and more than <see cref="MaximumPeerSegmentBytes"/> in all: they
    /// are packets the restore hands to its own stack (or sends to the peers). (Malformed base64 is
    /// refused by the JSON reader as corrupt.)
    /// </summary>
    private static void ValidateSegments(IReadOnlyDictionary<string, PeerSegment>? segments, string whose)
    {
        if (segments is null)
            return;
        long total = 0;
        foreach ((string text, PeerSegment segment) in segments)
        {
            if (!ConnectionKey.TryParse(text, null, out _))
                throw new InvalidDataException($"{FileName} is corrupt: its {whose} segments are keyed by \"{Truncate(text)}\", which is not a connection (LOCAL -> REMOTE)");
            if (SegmentFault(segment) is { } fault)
                throw new InvalidDataException($"{FileName} is corrupt: the {whose} segment of {text} has {fault}");
            total += segment.Packet.Length;
            if (total > MaximumPeerSegmentBytes)
                throw new InvalidDataException(
                    $"{FileName} is corrupt: its {whose} segments hold more than {MaximumPeerSegmentBytes >> 20} MiB of packets, more than the dump side ever records");
        }
    }

    private static string Truncate(string text) => text.Length <= 80 ? text : text[..80] + "...";

    /// <summary>Reads the manifest file through <see cref="TrustedFile.ReadRegular"/>, in the manifest's own words.</summary>
    private static byte[] ReadRegularFile(string path)
    {
        const string refusing = "refusing to restore without knowing what to freeze";
        try
        {
            return TrustedFile.ReadRegular(path, MaximumFileSize, "the manifest");
        }
        catch (FileRefusedException e)
        {
            throw e.Reason switch
            {
                FileRefusal.Missing => new InvalidDataException(
                    $"there is no {FileName} in the images directory: these images were not dumped with the TcpFreeze hook, " +
                    "so their connections were never frozen; restoring them without a lock would reset them. Dump again with the hook", e),
                FileRefusal.Link => new InvalidDataException(
                    $"{FileName} in the images directory is a symbolic link; the hook writes a regular file there and follows no link; {refusing}", e),
                FileRefusal.OpenFailed => new InvalidDataException(
                    $"cannot open {FileName} in the images directory ({Errnos.Name(e.Errno)}: {Marshal.GetPInvokeErrorMessage(e.Errno)}); {refusing}", e),
                FileRefusal.StatFailed => new InvalidDataException(
                    $"cannot stat {FileName} in the images directory ({Errnos.Name(e.Errno)}: {Marshal.GetPInvokeErrorMessage(e.Errno)}); {refusing}", e),
                FileRefusal.NotRegular => new InvalidDataException(
                    $"{FileName} in the images directory is {TrustedFile.TypeName(e.Type)}, not a regular file; the hook writes a regular file there; {refusing}", e),
                FileRefusal.TooLarge => new InvalidDataException(
                    $"{FileName} in the images directory is {e.Size:N0} bytes, more than any manifest ({MaximumFileSize >> 20} MiB at most); {refusing}", e),
                FileRefusal.GrewTooLarge => new InvalidDataException(
                    $"{FileName} in the images directory grew past {MaximumFileSize >> 20} MiB while it was read; {refusing}", e),
                _ => new InvalidDataException($"cannot read {FileName} in the images directory ({e.InnerException?.Message ?? e.Message}); {refusing}", e),
            };
        }
    }
}

[JsonSerializable(typeof(FreezeManifest))]
// Not indented: the file is for programs (jq formats it for people), and at 10,000 connections
// indentation is a fifth of its size.
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip)]
internal sealed partial class ManifestJson : JsonSerializerContext;
