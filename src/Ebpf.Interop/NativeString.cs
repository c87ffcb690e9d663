using System.Text;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>C strings in fixed-size kernel buffers (object names, interface names).</summary>
internal static unsafe class NativeString
{
    /// <summary>The NUL-terminated UTF-8 string in a buffer of <paramref name="capacity"/> bytes.</summary>
    public static string FromFixed(byte* bytes, int capacity)
    {
        int length = 0;
        while (length < capacity && bytes[length] != 0)
            length++;
        return Encoding.UTF8.GetString(bytes, length);
    }
}
