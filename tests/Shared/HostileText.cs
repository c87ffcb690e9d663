using CsCheck;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// Generators of hostile text for the parsers' property tests: random strings over the
/// characters parsers trip on (digits, separators, brackets, white space, non-ASCII
/// digits, NUL, lone surrogates), any UTF-16 string, and valid text with a few random
/// edits (insert, delete, replace, duplicate a slice, cut).
/// </summary>
public static class HostileText
{
    /// <summary>Characters that matter to the endpoint, key, JSON and settings parsers, and some that only look like them.</summary>
    public const string Alphabet = "0123456789abcdefABCDEF:.[]%->= \t\r\n\0#,/{}\"\\+eEx_"
        + "\u0660\u0669\uFF10\uFF19\u00A0\u2028\u0301\uD800\uDC00\u00B2";

    public static readonly Gen<char> Character = Gen.Frequency((6, Gen.Char[Alphabet]), (1, Gen.Char));

    /// <summary>Random text, 0-60 characters, mostly from <see cref="Alphabet"/>.</summary>
    public static readonly Gen<string> Text = Character.Array[0, 60].Select(chars => new string(chars));

    /// <summary><paramref name="valid"/> text with 1-4 random edits.</summary>
    public static Gen<string> Mutated(Gen<string> valid)
        => Gen.Select(valid, Gen.Select(Gen.Int[0, 4], Gen.Int[0, 1000], Gen.Int[0, 1000], Character).Array[1, 4],
            (text, edits) => edits.Aggregate(text, (current, edit) => Apply(current, edit.Item1, edit.Item2, edit.Item3, edit.Item4)));

    private static string Apply(string text, int kind, int a, int b, char c)
    {
        int at = text.Length == 0 ? 0 : a % (text.Length + 1);
        int to = text.Length == 0 ? 0 : b % (text.Length + 1);
        (int from, int end) = at <= to ? (at, to) : (to, at);
        return kind switch
        {
            0 => text.Insert(at, c.ToString()),
            1 when at < text.Length => text.Remove(at, 1),
            2 when at < text.Length => string.Concat(text.AsSpan(0, at), c.ToString(), text.AsSpan(at + 1)),
            3 => text.Insert(at, text[from..end]),
            4 => text[..at],
            _ => text + c,
        };
    }

    /// <summary>
    /// Runs <paramref name="action"/> on a worker thread and fails if it takes longer than
    /// <paramref name="seconds"/>: a parser that loops forever fails the test instead of hanging it. The bound is generous: thousands of
    /// iterations that write files took over 20 s on a loaded 2-core machine.
    /// </summary>
    public static void Bounded(Action action, double seconds = 90)
    {
        Task run = Task.Run(action);
        Assert.True(run.Wait(TimeSpan.FromSeconds(seconds)), $"the property did not finish within {seconds} s: a parser hangs");
    }
}
