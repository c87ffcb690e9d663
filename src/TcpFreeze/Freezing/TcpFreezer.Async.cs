namespace TcpFreeze;

// The asynchronous shape of the calls that can wait: each mutating call takes the pin root's lock, which another
// process (a CRIU step, the CLI) may hold for up to FreezerOptions.LockTimeout. The work itself is a few system calls
// (milliseconds) that cannot be interrupted half way, so each call runs the synchronous one on the thread pool, and
// the token cancels the lock wait (and a call that has not started). Once the lock is taken the call completes: a
// freeze or thaw is all or nothing either way, and never half done because of a token.
public sealed partial class TcpFreezer
{
    /// <summary>
    /// <see cref="Attach"/>, asynchronously: the pin lock wait observes <paramref name="cancellationToken"/>.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled before the work began or while it waited for the pin lock; nothing changed.</exception>
    /// <exception cref="TcpFreezeException">As <see cref="Attach"/>.</exception>
    public static Task<TcpFreezer> AttachAsync(FreezerOptions? options = null, CancellationToken cancellationToken = default)
        => Observing(() => Attach(options), cancellationToken);

    /// <summary>
    /// <see cref="Freeze"/>, asynchronously: the pin lock wait observes <paramref name="cancellationToken"/>.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled before the work began or while it waited for the pin lock; nothing was frozen.</exception>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached.</exception>
    /// <exception cref="ArgumentException">As <see cref="Freeze"/>.</exception>
    /// <exception cref="TcpFreezeException">As <see cref="Freeze"/>.</exception>
    public Task<FreezeResult> FreezeAsync(IEnumerable<ConnectionKey> connections, IEnumerable<EndpointKey>? endpoints = null, TimeSpan? lease = null,
        FreezeTiming timing = FreezeTiming.Now, CancellationToken cancellationToken = default)
        => Observing(() => Freeze(connections, endpoints, lease, timing), cancellationToken);

    /// <summary>
    /// <see cref="RenewLease"/>, asynchronously: the pin lock wait observes <paramref name="cancellationToken"/>.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled before the work began or while it waited for the pin lock; no lease changed.</exception>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached.</exception>
    /// <exception cref="ArgumentException">As <see cref="RenewLease"/>.</exception>
    /// <exception cref="TcpFreezeException">As <see cref="RenewLease"/>.</exception>
    public Task<int> RenewLeaseAsync(IEnumerable<ConnectionKey> connections, IEnumerable<EndpointKey>? endpoints, TimeSpan lease,
        CancellationToken cancellationToken = default)
        => Observing(() => RenewLease(connections, endpoints, lease), cancellationToken);

    /// <summary>
    /// <see cref="Thaw"/>, asynchronously: the pin lock wait observes <paramref name="cancellationToken"/>.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled before the work began or while it waited for the pin lock; nothing was thawed.</exception>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached.</exception>
    /// <exception cref="ArgumentException">As <see cref="Thaw"/>.</exception>
    /// <exception cref="TcpFreezeException">As <see cref="Thaw"/>.</exception>
    public Task<ThawResult> ThawAsync(IEnumerable<ConnectionKey> connections, IEnumerable<EndpointKey>? endpoints = null, bool kick = true,
        CancellationToken cancellationToken = default)
        => Observing(() => Thaw(connections, endpoints, kick), cancellationToken);

    /// <summary>
    /// <see cref="ThawAll"/>, asynchronously: the pin lock wait observes <paramref name="cancellationToken"/>.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled before the work began or while it waited for the pin lock; nothing was thawed.</exception>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached.</exception>
    /// <exception cref="TcpFreezeException">As <see cref="ThawAll"/>.</exception>
    public Task<ThawResult> ThawAllAsync(bool kick = true, CancellationToken cancellationToken = default)
        => Observing(() => ThawAll(kick), cancellationToken);

    /// <summary>
    /// <see cref="Detach(FreezerOptions?)"/>, asynchronously: the pin lock wait observes <paramref name="cancellationToken"/>.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled before the work began or while it waited for the pin lock; nothing was detached.</exception>
    /// <exception cref="TcpFreezeException">As <see cref="Detach(FreezerOptions?)"/>.</exception>
    public static Task<DetachResult> DetachAsync(FreezerOptions? options = null, CancellationToken cancellationToken = default)
        => Observing(() => Detach(options), cancellationToken);

    private static Task<T> Observing<T>(Func<T> call, CancellationToken cancellationToken)
        => Task.Run(() =>
        {
            using PinLock.CancellationScope scope = PinLock.ObserveCancellation(cancellationToken);
            return call();
        }, cancellationToken);
}
