using System.Text;

namespace TcpFreeze;

/// <summary>
/// What the results' PrintMembers share: a record prints its lists' items ("Interfaces = [lo, veth0]"), not the
/// list type's name, which is what a compiler-made ToString shows for a collection.
/// </summary>
internal static class RecordText
{
    public static StringBuilder Member<T>(this StringBuilder builder, string name, T value, bool first = false)
        => builder.Append(first ? "" : ", ").Append(name).Append(" = ").Append(value);

    public static StringBuilder Items<T>(this StringBuilder builder, string name, IEnumerable<T> items, bool first = false)
        => builder.Append(first ? "" : ", ").Append(name).Append(" = [").AppendJoin(", ", items).Append(']');
}
