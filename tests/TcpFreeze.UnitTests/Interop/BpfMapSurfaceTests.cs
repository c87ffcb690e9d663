using System.Reflection;
using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze.Tests;

/// <summary>A map's elements have one way in: the typed view, whose sizes are checked once, when it is made.</summary>
public sealed class BpfMapSurfaceTests
{
    private static string[] PublicMethods(Type type)
        => type.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
            .Select(m => m.Name).Distinct().Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public void An_untyped_map_opens_pins_and_describes_but_reads_and_writes_no_element()
    {
        Assert.Equal(
            ["As", "Create", "Dispose", "IsEmpty", "OpenPinned", "Pin", "TryOpenById", "get_Handle", "get_Info"],
            PublicMethods(typeof(BpfMap)));
    }

    [Fact]
    public void The_typed_view_carries_every_element_operation_without_type_arguments_of_its_own()
    {
        MethodInfo[] methods = typeof(BpfMap<uint, ulong>).GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly);
        Assert.All(methods, m => Assert.False(m.IsGenericMethodDefinition, $"{m.Name} takes type arguments: its sizes would be checked per call"));
        Assert.Superset(
            new HashSet<string> { "TryLookup", "Update", "Delete", "GetKeys", "LookupAll", "LookupPerCpu", "UpdateBatch", "DeleteBatch", "DeletePresent" },
            methods.Select(m => m.Name).ToHashSet());
    }
}
