using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using TcpFreeze.Tests.Infrastructure;
using Xunit.Abstractions;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// README's "Migration on one host" steps, taken from the README (the code block after its doc-test marker) and run
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
        string steps = ReadmeSteps();
        Assert.Contains("criu dump", steps);
        Assert.Contains("criu restore", steps);

        using var network = TestNetwork.Create("tfb");
        using var pins = new PinRoot("tfb/doc-");
        var endpoint = new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 8080);
        string settings = Path.Combine(_work, "criu-hook.conf");
        File.WriteAllText(settings, $"pin-root = {pins.Path}\nlease-seconds = 60\n");
        string pidFile = Path.Combine(_work, "nginx.pid");
        string harness = Path.Combine(_work, "one-host.sh");
        File.WriteAllText(harness, $$"""
            set -e
            # The test's own: the hook where scripts/install.sh puts it, in this private mount namespace only.
            mount -t tmpfs -o mode=0755 tfb-doc /usr/local/bin
            ln -s '{{criu.Hook}}' /usr/local/bin/tcpfreeze-criu-hook
            # nginx gets no descriptor of the test runner's (one on the host's /dev would be out of this mount namespace's reach).
            python3 -c 'import os, sys; os.closerange(3, os.sysconf("SC_OPEN_MAX")); os.execvp(sys.argv[1], sys.argv[1:])' \
                nginx -c '{{WriteNginxConfig(endpoint, pidFile)}}' -p '{{_work}}/' -e '{{_work}}/nginx-error.log'
            for i in $(seq 100); do [ -s '{{pidFile}}' ] && break; sleep 0.1; done
            PID=$(cat '{{pidFile}}')
            IMAGES='{{_work}}/images'
            mkdir "$IMAGES"
            echo "server $PID"
            read -r go
            # ---------------------------------------------------------------- README.md, "Migration on one host"
            {{steps}}
            # ----------------------------------------------------------------
            echo "restored $PID"
            """);

        var info = new ProcessStartInfo("unshare")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = _work,
        };
        foreach (string a in new[] { "-m", "--propagation", "private", "--", "nsenter", $"--net=/run/netns/{network.NameB}", "bash", harness })
            info.ArgumentList.Add(a);
        info.Environment["PATH"] = $"{Path.GetDirectoryName(Path.GetFullPath(criu.Criu))}:/usr/sbin:/usr/bin:/sbin:/bin";
        info.Environment["TCPFREEZE_HOOK_CONFIG"] = settings;
        int? pid = null;
        using Process run = Process.Start(info) ?? throw new InvalidOperationException("could not start unshare");
        Task<string> errors = run.StandardError.ReadToEndAsync();
        try
        {
            string? first = await run.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            if (first is null || !first.StartsWith("server ", StringComparison.Ordinal))
                Assert.Fail($"nginx did not start: {first} {await Errors(errors, run)}{NginxServer.ErrorLog(_work)}");
            pid = int.Parse(first!["server ".Length..]);

            await using ClientLoad load = ClientLoad.Http(network.A, endpoint, Clients, TimeSpan.FromMilliseconds(25));
            Assert.True(load.WaitForProgress(_ => 3, TimeSpan.FromSeconds(30)), string.Join("; ", load.Failures.Take(5)) + NginxServer.ErrorLog(_work));

            var clock = Stopwatch.StartNew();
            await run.StandardInput.WriteLineAsync("go");
            await run.StandardInput.FlushAsync();
            string rest = await run.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromMinutes(3));
            await run.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            string log = await errors;
            output.WriteLine($"the README's steps took {clock.ElapsedMilliseconds} ms");
            output.WriteLine(log);
            Assert.True(run.ExitCode == 0, $"the README's steps failed (exit {run.ExitCode}):\n{rest}\n{CriuRunner.Tail(log, 60)}");
            Assert.Contains($"restored {pid}", rest);
            // The three ways the steps used to fail, by CRIU's own words.
            Assert.DoesNotContain("Can't fork for PID", log);
            Assert.DoesNotContain("will be ignored in restore command", log);
            Assert.DoesNotContain("Can't get rlimit", log);
            Assert.True(DumpableServer.IsAlive(pid.Value), "the restored nginx is not running under its PID");

            long[] atRestore = load.Snapshot();
            Assert.True(load.WaitForProgress(id => atRestore[id] + 5, TimeSpan.FromSeconds(40)),
                $"not every client came back after the README's steps: {string.Join("; ", load.Failures.Take(5))}");
            Assert.Empty(load.Failures);
            // The hook worked with the settings the README's variable named: its pins, and it detached when done.
            Assert.False(TcpFreezer.IsAttached(pins.Options(network.B)), "the hook left its programs attached");
        }
        finally
        {
            if (!run.HasExited)
                run.Kill(entireProcessTree: true);
            if (pid is int server)
                KillTree(server);
            TcpFreezer.Detach(pins.Options(network.B));
        }
    }

    private string WriteNginxConfig(IPEndPoint endpoint, string pidFile)
    {
        string config = Path.Combine(_work, "nginx.conf");
        // As an operator's nginx runs: a daemon (its parent, PID 1, reaps it after the dump), workers as root (the
        // README's advice where root lacks CAP_SYS_RESOURCE), everything it writes in the test's folder.
        File.WriteAllText(config, $$"""
            daemon on;
            master_process on;
            worker_processes 1;
            user root;
            pid {{pidFile}};
            error_log {{_work}}/nginx-error.log info;
            events { worker_connections 1024; }
            http {
                access_log off;
                keepalive_timeout 600s;
                keepalive_requests 1000000;
                client_body_temp_path {{_work}}/body;
                proxy_temp_path {{_work}}/proxy;
                fastcgi_temp_path {{_work}}/fastcgi;
                uwsgi_temp_path {{_work}}/uwsgi;
                scgi_temp_path {{_work}}/scgi;
                server {
                    listen {{endpoint}};
                    default_type text/plain;
                    location / { return 200 "$uri\n"; }
                }
            }
            """);
        return config;
    }

    private static async Task<string> Errors(Task<string> errors, Process run)
    {
        if (!run.HasExited)
            run.Kill(entireProcessTree: true);
        return await errors.WaitAsync(TimeSpan.FromSeconds(10));
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
