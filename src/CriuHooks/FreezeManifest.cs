using System.Text.Json;
using System.Text.Json.Serialization;

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
    /// namespace as a whole (<see cref="NamespaceLock"/>) and freezes no connection, so the
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

    /// <summary>The connections as keys.</summary>
    public ConnectionKey[] ConnectionKeys() => Connections.Select(ConnectionKey.Parse).ToArray();

    /// <summary>The endpoints as keys.</summary>
    public EndpointKey[] EndpointKeys() => Endpoints.Select(EndpointKey.Parse).ToArray();

    /// <summary>Writes the manifest into <paramref name="imageDirectory"/> atomically (temporary file, then rename).</summary>
    public void Write(string imageDirectory) => Write(imageDirectory, FileName);

    /// <summary>Writes the manifest as <paramref name="fileName"/> in <paramref name="directory"/> atomically.</summary>
    public void Write(string directory, string fileName)
    {
        string path = Path.Combine(directory, fileName), temporary = path + ".tmp";
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(this, ManifestJson.Default.FreezeManifest);
        using (FileStream stream = new(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(json);
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Reads and validates the manifest in <paramref name="imageDirectory"/>.</summary>
    /// <remarks>Fields this version does not know are ignored, so a newer writer can add some.</remarks>
    /// <exception cref="InvalidDataException">It is missing, unreadable or malformed; the message says which and what to do.</exception>
    public static FreezeManifest Read(string imageDirectory) => Read(imageDirectory, FileName);

    /// <summary>Reads and validates the manifest file <paramref name="fileName"/> in <paramref name="directory"/>.</summary>
    public static FreezeManifest Read(string directory, string fileName)
    {
        string path = Path.Combine(directory, fileName);
        if (!File.Exists(path))
            throw new InvalidDataException(
                $"there is no {FileName} in the images directory: these images were not dumped with the TcpFreeze hook, " +
                "so their connections were never frozen; restoring them without a lock would reset them. Dump again with the hook");
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"cannot read {FileName} in the images directory ({e.Message})", e);
        }
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
        return manifest;
    }
}

[JsonSerializable(typeof(FreezeManifest))]
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip)]
internal sealed partial class ManifestJson : JsonSerializerContext;
