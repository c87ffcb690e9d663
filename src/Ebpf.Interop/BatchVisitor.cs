namespace TcpFreeze.Ebpf.Interop;

/// <summary>
/// Receives one system call's worth of a map's elements from <see cref="BpfMap{TKey, TValue}.VisitAll"/>:
/// <paramref name="keys"/>[i] holds <paramref name="values"/>[i]. The spans point into a buffer the
/// call reuses, so they are valid only until the visitor returns: copy what you keep.
/// </summary>
/// <typeparam name="TKey">The key's layout.</typeparam>
/// <typeparam name="TValue">The value's layout.</typeparam>
public delegate void BatchVisitor<TKey, TValue>(ReadOnlySpan<TKey> keys, ReadOnlySpan<TValue> values)
    where TKey : unmanaged where TValue : unmanaged;
