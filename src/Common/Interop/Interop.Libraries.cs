namespace Interop;

/// <summary>The native libraries the interop tree binds to.</summary>
internal static class Libraries
{
    internal const string Libc = "libc";
}
