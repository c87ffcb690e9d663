using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze;

/// <summary>
/// One attach, all or nothing, under the pin lock: the pin directory created if missing, the
/// programs and maps opened or loaded (<see cref="PinnedObjects"/>), the programs attached to the
/// interfaces (<see cref="InterfaceAttacher"/>). When any step fails, everything this attach
/// created is undone: its attachments, its pins, the directory; what was there before stays.
/// </summary>
internal static class AttachTransaction
{
    /// <summary>What a successful attach leaves the new freezer: the maps, where it attached, and its hold on the pin directory.</summary>
    public sealed record Attached(NamespacePins Pins, FreezerMaps Maps, IReadOnlyList<AttachedInterface> Interfaces, PinDirectoryUse? Use);

    /// <summary>Attaches, and makes of it what <paramref name="open"/> makes (the freezer) before the pin lock is released; a failure of either undoes the attach.</summary>
    public static T Run<T>(FreezerOptions options, Func<Attached, T> open)
    {
        NamespacePins pins = NamespacePins.For(options);
        using PinLock pinLock = pins.Lock(options.LockTimeout);
        var createdPins = new List<string>();
        var xdpDone = new List<XdpAttachment>();
        var tcDone = new List<TcAttachment>();
        bool createdDirectory = false;
        PinnedObjects? objects = null;
        try
        {
            createdDirectory = pins.CreateDirectory();
            objects = pins.OpenOrLoad(options, createdPins);
            IReadOnlyList<AttachedInterface> interfaces = InterfaceAttacher.Attach(options, objects, pins, xdpDone, tcDone);
            objects.DisposePrograms();
            // In use from before the pin lock is released: no idle detach can slip in before the freeze.
            return open(new Attached(pins, objects.TakeMaps(), interfaces, pins.TakeUse(options.LockTimeout)));
        }
        catch
        {
            InterfaceAttacher.RollBack(options, xdpDone, tcDone);
            foreach (string pin in createdPins)
                BpfFs.Unpin(pin);
            if (createdDirectory)
                NamespacePins.TryRemoveEmptyDirectory(pins.Directory);
            objects?.DisposeAll();
            throw;
        }
    }
}
