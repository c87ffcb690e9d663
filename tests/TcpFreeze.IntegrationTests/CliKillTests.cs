using System.Diagnostics;
using System.Net.Sockets;
using TcpFreeze.Tests.Infrastructure;
using Xunit.Abstractions;

namespace TcpFreeze.Tests;

/// <summary>
/// The tcpfreeze command SIGKILLed at every point of a freeze of a process tree's sockets:
/// the connections are frozen all together or not at all, the pin lock dies with the
/// process, and the next command works.
/// </summary>
public sealed class CliKillTests(ITestOutputHelper output)
{
    private const int Pairs = 150;

    [RootFact]
    [Trait("Privileges", "root")]
    public void A_freeze_killed_at_any_point_freezes_all_of_its_connections_or_none_and_the_next_command_works()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.A);
        using var holder = SelfConnectedScript.Start(network.NameA, network.AddressA(AddressFamily.InterNetwork).ToString(), 9300, Pairs);
        holder.Expect("connected", TimeSpan.FromSeconds(30));
        string cli = Path.Combine(AppContext.BaseDirectory, "TcpFreeze.Cli.dll");
        try
        {
            TcpFreezer.Attach(options).Dispose();
            ProcessStartInfo Freeze()
            {
                var info = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (string argument in new[] { cli, "--pin-root", pins.Path, "freeze", "--pid", holder.Pid.ToString(), "--lease", "60" })
                    info.ArgumentList.Add(argument);
                return info;
            }

            // How long a whole freeze takes here (start-up included): the kills are spread over it.
            var whole = Stopwatch.StartNew();
            using (Process complete = Process.Start(Freeze())!)
            {
                Assert.True(complete.WaitForExit(60_000));
                Assert.Equal(0, complete.ExitCode);
            }
            TimeSpan span = whole.Elapsed;
            using (TcpFreezer freezer = TcpFreezer.Open(options))
            {
                Assert.Equal(2 * Pairs, freezer.ListConnections().Count);
                freezer.ThawAll();
            }

            int none = 0, all = 0;
            const int Steps = 30;
            for (int step = 0; step <= Steps; step++)
            {
                TimeSpan delay = span * step / Steps;
                using (Process freeze = Process.Start(Freeze())!)
                {
                    Thread.Sleep(delay);
                    freeze.Kill(); // SIGKILL; nothing happens if it has finished
                    Assert.True(freeze.WaitForExit(10_000), "the killed command did not exit");
                }
                int delayMs = (int)delay.TotalMilliseconds;

                // The next command must get the pin lock at once and see a whole freeze or none.
                var clock = Stopwatch.StartNew();
                using TcpFreezer freezer = TcpFreezer.Open(options);
                int connections = freezer.ListConnections().Count;
                Assert.True(connections is 0 or 2 * Pairs, $"killed after {delayMs} ms: {connections} of {2 * Pairs} connections frozen");
                if (connections > 0)
                    Assert.Single(freezer.ListEndpoints()); // endpoints go in first
                freezer.ThawAll();
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"the next command waited {clock.Elapsed} for the lock");
                Assert.Empty(freezer.ListConnections());
                Assert.Empty(freezer.ListEndpoints());
                if (connections == 0) none++; else all++;
            }
            output.WriteLine($"a whole freeze took {span.TotalMilliseconds:F0} ms; killed before it landed {none} times, after {all} times");
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }
}
