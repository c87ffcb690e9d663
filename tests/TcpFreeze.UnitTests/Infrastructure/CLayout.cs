using System.Runtime.InteropServices;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// Sizes, offsets and constants as the C compiler sees them: a program compiled against this machine's headers
/// prints them as "NAME VALUE" lines, and the layout tests hold the managed mirrors against them.
/// </summary>
internal sealed class CLayout
{
    private readonly Dictionary<string, int> _values;

    private CLayout(Dictionary<string, int> values) => _values = values;

    /// <summary>
    /// Compiles and runs a program made of <paramref name="head"/> (feature macros and includes), the macros
    /// <c>S(struct)</c> (prints its size) and <c>O(struct, field)</c> (prints the field's offset), and a
    /// <c>main</c> running <paramref name="body"/>, which may print more "NAME VALUE" lines itself.
    /// </summary>
    public static CLayout Measure(string head, string body)
    {
        string clang = File.Exists("/usr/bin/clang-14") ? "/usr/bin/clang-14" : "clang";
        using var directory = new TempDirectory();
        string source = directory.Write("layout.c", $$"""
            {{head}}
            #include <stddef.h>
            #include <stdio.h>
            #define S(t) printf(#t " %zu\n", sizeof(struct t))
            #define O(t, f) printf(#t "." #f " %zu\n", offsetof(struct t, f))
            int main(void) {
            {{body}}
                return 0;
            }
            """);
        string binary = directory.File("layout");
        Run.Checked(clang, "-o", binary, source);
        return new CLayout(Run.Checked(binary).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ')).ToDictionary(p => p[0], p => int.Parse(p[1])));
    }

    /// <summary>The value printed as <paramref name="name"/>.</summary>
    public int this[string name] => _values[name];

    public void AssertSize<T>(string name) => AssertSize(name, typeof(T));

    public void AssertSize(string name, Type managed)
        => Assert.True(this[name] == Marshal.SizeOf(managed), $"sizeof(struct {name}) is {this[name]} in C but {Marshal.SizeOf(managed)} in C#");

    public void AssertOffset<T>(string name, string field) => AssertOffset(name, typeof(T), field);

    public void AssertOffset(string name, Type managed, string field)
        => Assert.True(this[name] == (int)Marshal.OffsetOf(managed, field),
            $"{name} is at {this[name]} in C but {managed.Name}.{field} at {Marshal.OffsetOf(managed, field)}");

    public void AssertSame(string name, int managed) => Assert.True(this[name] == managed, $"{name} is {this[name]} in C but {managed} in C#");
}
