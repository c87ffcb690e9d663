namespace TcpFreeze;

/// <summary>The IParsable and ISpanFormattable plumbing the key types share.</summary>
internal static class KeyText
{
    public static bool TryParse<T>(string? text, Func<string, T> parse, out T result) where T : struct
    {
        result = default;
        if (text is null)
            return false;
        try
        {
            result = parse(text);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    public static bool TryFormat(string text, Span<char> destination, out int charsWritten)
    {
        bool fits = text.TryCopyTo(destination);
        charsWritten = fits ? text.Length : 0;
        return fits;
    }
}
