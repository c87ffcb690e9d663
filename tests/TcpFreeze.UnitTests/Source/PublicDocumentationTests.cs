using System.Reflection;
using System.Xml.Linq;
using TcpFreeze.CriuHooks;
using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Native;

namespace TcpFreeze.Tests;

/// <summary>
/// What a user's editor shows for the public API (the XML documentation of each library package) names only what the
/// user can see: a link to an internal type is a dead end in a hover.
/// </summary>
public sealed class PublicDocumentationTests
{
    private static readonly Assembly[] Libraries =
        [typeof(NativeCallException).Assembly, typeof(BpfMap).Assembly, typeof(TcpFreezer).Assembly, typeof(HookSettings).Assembly];

    [Fact]
    public void The_documentation_of_public_members_links_only_to_public_types()
    {
        var deadEnds = new List<string>();
        int checkedLinks = 0;
        foreach (Assembly assembly in Libraries)
        {
            string file = Path.ChangeExtension(assembly.Location, ".xml");
            Assert.True(File.Exists(file), $"{file} is missing: the library packages ship their XML documentation");
            foreach (XElement member in XDocument.Load(file).Descendants("member"))
            {
                string id = (string)member.Attribute("name")!;
                if (!IsPublic(id))
                    continue;
                foreach (string cref in member.Descendants().Select(e => (string?)e.Attribute("cref")).OfType<string>())
                {
                    checkedLinks++;
                    if (TypeOf(cref) is { } type && !type.IsVisible)
                        deadEnds.Add($"{id} links to {cref} ({type.FullName} is not public)");
                }
            }
        }
        Assert.True(checkedLinks > 100, $"only {checkedLinks} links were found: the documentation files were not read");
        Assert.True(deadEnds.Count == 0, string.Join("\n", deadEnds));
    }

    /// <summary>Whether a documentation id ("T:NS.Type", "M:NS.Type.Method(...)") names a public type or a public member of one.</summary>
    private static bool IsPublic(string id)
    {
        string body = id[2..];
        if (id.StartsWith("T:", StringComparison.Ordinal))
            return FindType(body) is { IsVisible: true };
        string withoutParameters = body.Split('(')[0];
        int dot = withoutParameters.LastIndexOf('.');
        if (dot < 0 || FindType(withoutParameters[..dot]) is not { IsVisible: true } declaring)
            return false;
        string name = withoutParameters[(dot + 1)..].Split('`')[0].Replace('#', '.');
        const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        MemberInfo[] members = declaring.GetMember(name, All);
        return members.Any(m => m switch
        {
            MethodBase method => method.IsPublic || method.IsFamily || method.IsFamilyOrAssembly,
            FieldInfo field => field.IsPublic || field.IsFamily,
            PropertyInfo property => property.GetMethod is { IsPublic: true } || property.SetMethod is { IsPublic: true },
            EventInfo e => e.AddMethod is { IsPublic: true },
            Type nested => nested.IsVisible,
            _ => false,
        });
    }

    /// <summary>The type a cref names, or that declares the member it names; null for types outside the libraries.</summary>
    private static Type? TypeOf(string cref)
    {
        if (cref.Length < 2 || cref[1] != ':')
            return null;
        string body = cref[2..].Split('(')[0];
        if (cref.StartsWith("T:", StringComparison.Ordinal))
            return FindType(body);
        int dot = body.LastIndexOf('.');
        return dot < 0 ? null : FindType(body[..dot]);
    }

    /// <summary>A type of the libraries by its documentation name (nested types joined with '.', generic arity kept).</summary>
    private static Type? FindType(string name)
    {
        foreach (Assembly assembly in Libraries)
        {
            // Try the name as a top-level type, then with its last dots read as nesting.
            string candidate = name;
            for (int i = 0; i < 4; i++)
            {
                if (assembly.GetType(candidate) is { } type)
                    return type;
                int dot = candidate.LastIndexOf('.');
                if (dot < 0)
                    break;
                candidate = candidate[..dot] + "+" + candidate[(dot + 1)..];
            }
        }
        return null;
    }
}
