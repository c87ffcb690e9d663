using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Migration;

/// <summary>The machine and tool versions a result belongs to, for the report's header.</summary>
internal sealed record MachineInfo(string Kernel, string Cpu, int Cores, string Os, string Criu, string Iptables, string Nft, string Nginx, string Ab)
{
    public static MachineInfo Read(string criu)
    {
        string cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?";
        string os = File.Exists("/etc/os-release")
            ? File.ReadLines("/etc/os-release").FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal))?.Split('=', 2)[1].Trim('"') ?? "?"
            : "?";
        return new MachineInfo(Tool("uname", "-r"), cpu, Environment.ProcessorCount, os, Tool(criu, "--version"),
            Tool("iptables", "--version"), Tool("nft", "--version"), Tool("nginx", "-v").Replace("nginx version: ", "", StringComparison.Ordinal),
            Tool("ab", "-V").Replace("This is ", "", StringComparison.Ordinal).Replace(" <$Revision$>", "", StringComparison.Ordinal));
    }

    /// <summary>The first line the tool prints about its version (nginx prints it on stderr; ab on its second line).</summary>
    private static string Tool(string program, string argument)
    {
        try
        {
            (int _, string output, string error) = Run.Capture(program, argument);
            return (output + error).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .FirstOrDefault(l => l.Contains("ersion", StringComparison.Ordinal) || l.Contains('.'))?.Trim() ?? "?";
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or TimeoutException)
        {
            return $"? ({program}: {e.Message})";
        }
    }

    public override string ToString()
        => $"kernel {Kernel}, {Cpu}, {Cores} cores, {Os}; CRIU {Criu.Replace("Version: ", "", StringComparison.Ordinal)}; {Iptables}; {Nft}; {Nginx}; {Ab}";
}
