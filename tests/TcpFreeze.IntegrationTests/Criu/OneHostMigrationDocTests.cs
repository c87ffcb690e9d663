using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using TcpFreeze.Tests.Infrastructure;
using Xunit.Abstractions;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// README's "A first migration" steps, taken from the README (the code block after its doc-test marker) and run
/// as they are written, in bash with set -e: CRIU 4.2.1 from PATH, the hook at /usr/local/bin/tcpfreeze-criu-hook (in
/// a private mount namespace of the test's own, so the host's /usr/local/bin is untouched), an nginx that runs as a
/// daemon with its workers as root (the README's advice) in a network namespace of its own, with keep-alive clients.
/// The test only sets what the README tells the reader to set: PID, IMAGES, and TCPFREEZE_HOOK_CONFIG.
/// </summary>
public sealed class OneHostMigrationDocTests(CriuFixture criu, ITestOutputHelper output) : CriuTest("tfb-doc-")
{
    private const string Marker = "<!-- doc-test: one-host-migration ";
    private const int Clients = 50;

    /// <summary>The README's one-host block, exactly.</summary>
    internal static string ReadmeSteps()
    {
        string readme = File.ReadAllText(Path.Combine(Repository.Root, "README.md"));
        int marker = readme.IndexOf(Marker, StringComparison.Ordinal);
        Assert.True(marker >= 0, $"README.md has no '{Marker}...' line before the one-host steps");
        int start = readme.IndexOf("```bash\n", marker, StringComparison.Ordinal) + "```bash\n".Length;
        int end = readme.IndexOf("\n```\n", start, StringComparison.Ordinal) + 1;
        // The block follows its marker at once (a blank line at most): never a later block by accident.
        Assert.True(readme[marker..(start - "```bash\n".Length)].Count(c => c == '\n') <= 2, "the one-host block must follow its marker");
        return readme[start..end];
    }

    [RootFact]
    public async Task The_readmes_one_host_steps_run_as_written_and_every_client_keeps_its_connection()
    {
        await using Scenario run = await Scenario.Start(criu, _work, workersUser: "root");
        (int exit, string stdout, string log) = await run.RunSteps();
        output.WriteLine(log);
        Assert.True(exit == 0, $"the README's steps failed (exit {exit}):\n{stdout}\n{CriuRunner.Tail(log, 60)}");
        Assert.Contains($"restored {run.Pid}", stdout);
        // The three ways the steps used to fail, by CRIU's own words.
        Assert.DoesNotContain("Can't fork for PID", log);
        Assert.DoesNotContain("will be ignored in restore command", log);
        Assert.DoesNotContain("Can't get rlimit", log);
        Assert.True(DumpableServer.IsAlive(run.Pid), "the restored nginx is not running under its PID");

        run.AssertEveryClientComesBack("after the README's steps");
        // The hook worked with the settings the README's variable named: its pins, and it detached when done.
        Assert.False(TcpFreezer.IsAttached(run.Pins), "the hook left its programs attached");
    }

    [RootFact]
    public async Task Workers_of_another_user_are_refused_where_root_lacks_CAP_SYS_RESOURCE_as_the_readme_says_and_the_clients_carry_on()
    {
        await using Scenario run = await Scenario.Start(criu, _work, workersUser: "www-data"); // Debian's default
        (int exit, string stdout, string log) = await run.RunSteps();
        output.WriteLine(log);
        if (RootHasSysResource())
        {
            // An ordinary host: the README says nothing is needed there.
            Assert.True(exit == 0, $"with CAP_SYS_RESOURCE the steps failed (exit {exit}):\n{stdout}\n{CriuRunner.Tail(log, 60)}");
        }
        else
        {
            Assert.True(exit != 0, $"the dump of workers running as www-data succeeded without CAP_SYS_RESOURCE:\n{CriuRunner.Tail(log, 60)}");
            Assert.Contains("Can't get rlimit 0: Operation not permitted", log);
            Assert.Contains("Dumping FAILED", log);
            Assert.DoesNotContain("criu restore", stdout);
            Assert.True(DumpableServer.IsAlive(run.Pid), "the nginx whose dump failed is not running");
        }
        // Either way every client is answered: after a refused dump the hook's watcher thawed what pre-dump froze.
        run.AssertEveryClientComesBack(RootHasSysResource() ? "after the README's steps" : "after the refused dump");
    }

    /// <summary>Whether this process (root) has CAP_SYS_RESOURCE, which CRIU needs to dump another user's process.</summary>
    private static bool RootHasSysResource()
    {
        const int CapSysResource = 24;
        string effective = File.ReadLines("/proc/self/status").Single(l => l.StartsWith("CapEff:", StringComparison.Ordinal))["CapEff:".Length..].Trim();
        return (Convert.ToUInt64(effective, 16) & (1UL << CapSysResource)) != 0;
    }

    /// <summary>
    /// nginx in a network namespace of its own with keep-alive clients, and the harness that will run the README's
    /// steps on it: started in a private mount namespace, waiting for the word to go.
    /// </summary>
    private sealed class Scenario : IAsyncDisposable
    {
        private readonly TestNetwork _network;
        private readonly PinRoot _pins;
        private readonly Process _harness;
        private readonly Task<string> _errors;
        private ClientLoad? _load;
        private long[]? _before;

        private Scenario(TestNetwork network, PinRoot pins, Process harness)
        {
            _network = network;
            _pins = pins;
            _harness = harness;
            _errors = harness.StandardError.ReadToEndAsync();
        }

        public int Pid { get; private set; }
        public FreezerOptions Pins => _pins.Options(_network.B);

        public static async Task<Scenario> Start(CriuFixture criu, string work, string workersUser)
        {
            string steps = ReadmeSteps();
            Assert.Contains("criu dump", steps);
            Assert.Contains("criu restore", steps);
            var network = TestNetwork.Create("tfb");
            var pins = new PinRoot("tfb-doc-");
            var endpoint = new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 8080);
            string settings = Path.Combine(work, "criu-hook.conf");
            File.WriteAllText(settings, $"pin-root = {pins.Path}\nlease-seconds = 60\n");
            string pidFile = Path.Combine(work, "nginx.pid");
            string harness = Path.Combine(work, "one-host.sh");
            File.WriteAllText(harness, $$"""
                set -e
                # The test's own: the hook where scripts/install.sh puts it, in this private mount namespace only.
                mount -t tmpfs -o mode=0755 tfb-doc /usr/local/bin
                ln -s '{{criu.Hook}}' /usr/local/bin/tcpfreeze-criu-hook
                # nginx gets no descriptor of the test runner's (one on the host's /dev would be out of this mount namespace's reach).
                python3 -c 'import os, sys; os.closerange(3, os.sysconf("SC_OPEN_MAX")); os.execvp(sys.argv[1], sys.argv[1:])' \
                    nginx -c '{{WriteNginxConfig(work, endpoint, pidFile, workersUser)}}' -p '{{work}}/' -e '{{work}}/nginx-error.log'
                for i in $(seq 100); do [ -s '{{pidFile}}' ] && break; sleep 0.1; done
                PID=$(cat '{{pidFile}}')
                IMAGES='{{work}}/images'
                mkdir "$IMAGES"
                echo "server $PID"
                read -r go
                # ---------------------------------------------------------------- README.md, "A first migration"
                {{steps}}
                # ----------------------------------------------------------------
                echo "restored $PID"
                """);
            var info = new ProcessStartInfo("unshare")
            {
                RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = work,
            };
            foreach (string a in new[] { "-m", "--propagation", "private", "--", "nsenter", $"--net=/run/netns/{network.NameB}", "bash", harness })
                info.ArgumentList.Add(a);
            info.Environment["PATH"] = $"{Path.GetDirectoryName(Path.GetFullPath(criu.Criu))}:/usr/sbin:/usr/bin:/sbin:/bin";
            info.Environment["TCPFREEZE_HOOK_CONFIG"] = settings;
            Process process;
            try
            {
                process = Process.Start(info) ?? throw new InvalidOperationException("could not start unshare");
            }
            catch
            {
                pins.Dispose();
                network.Dispose();
                throw;
            }
            var scenario = new Scenario(network, pins, process);
            try
            {
                string? first = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
                if (first is null || !first.StartsWith("server ", StringComparison.Ordinal))
                    Assert.Fail($"nginx did not start: {first} {await scenario.StopHarness()}{NginxServer.ErrorLog(work)}");
                scenario.Pid = int.Parse(first!["server ".Length..]);
                scenario._load = ClientLoad.Http(network.A, endpoint, Clients, TimeSpan.FromMilliseconds(25));
                Assert.True(scenario._load.WaitForProgress(_ => 3, TimeSpan.FromSeconds(30)), string.Join("; ", scenario._load.Failures.Take(5)) + NginxServer.ErrorLog(work));
                return scenario;
            }
            catch
            {
                await scenario.DisposeAsync();
                throw;
            }
        }

        /// <summary>Lets the harness run the README's steps; its exit code, standard output and CRIU's messages.</summary>
        public async Task<(int Exit, string Output, string Log)> RunSteps()
        {
            _before = _load!.Snapshot();
            await _harness.StandardInput.WriteLineAsync("go");
            await _harness.StandardInput.FlushAsync();
            string rest = await _harness.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromMinutes(3));
            await _harness.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            return (_harness.ExitCode, rest, await _errors.WaitAsync(TimeSpan.FromSeconds(30)));
        }

        /// <summary>Every client gets five more answers than it had when the steps began, and none failed.</summary>
        public void AssertEveryClientComesBack(string when)
        {
            long[] before = _before!;
            Assert.True(_load!.WaitForProgress(id => before[id] + 5, TimeSpan.FromSeconds(40)),
                $"not every client came back {when}: {string.Join("; ", _load.Failures.Take(5))}");
            Assert.Empty(_load.Failures);
        }

        private async Task<string> StopHarness()
        {
            if (!_harness.HasExited)
                _harness.Kill(entireProcessTree: true);
            return await _errors.WaitAsync(TimeSpan.FromSeconds(10));
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                if (_load is not null)
                    await _load.DisposeAsync();
                if (!_harness.HasExited)
                    _harness.Kill(entireProcessTree: true);
                if (Pid != 0)
                    KillTree(Pid);
                TcpFreezer.Detach(Pins);
            }
            finally
            {
                _harness.Dispose();
                _pins.Dispose();
                _network.Dispose();
            }
        }
    }

    private static string WriteNginxConfig(string work, IPEndPoint endpoint, string pidFile, string workersUser)
    {
        string config = Path.Combine(work, "nginx.conf");
        // As an operator's nginx runs: a daemon (its parent, PID 1, reaps it after the dump), workers as root (the
        // README's advice where root lacks CAP_SYS_RESOURCE), everything it writes in the test's folder.
        File.WriteAllText(config, $$"""
            daemon on;
            master_process on;
            worker_processes 1;
            user {{workersUser}};
            pid {{pidFile}};
            error_log {{work}}/nginx-error.log info;
            events { worker_connections 1024; }
            http {
                access_log off;
                keepalive_timeout 600s;
                keepalive_requests 1000000;
                client_body_temp_path {{work}}/body;
                proxy_temp_path {{work}}/proxy;
                fastcgi_temp_path {{work}}/fastcgi;
                uwsgi_temp_path {{work}}/uwsgi;
                scgi_temp_path {{work}}/scgi;
                server {
                    listen {{endpoint}};
                    default_type text/plain;
                    location / { return 200 "$uri\n"; }
                }
            }
            """);
        return config;
    }

    /// <summary>The nginx master and its workers, by PID (whatever the steps left running).</summary>
    private static void KillTree(int master)
    {
        var pids = new List<int> { master };
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
                continue;
            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                if (int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1]) == master)
                    pids.Add(pid);
            }
            catch (Exception e) when (e is IOException or FormatException)
            {
            }
        }
        foreach (int pid in pids)
            try
            {
                Process.GetProcessById(pid).Kill();
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
            }
    }
}
