using System.Net;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// Debian's nginx as a dumpable server: master process, one worker running as root (CRIU
/// cannot dump another user's process here; more workers, sharing the port with SO_REUSEPORT, when
/// one would need more descriptors than a process may have), keep-alive without limits, and every
/// request answered with its own path (<c>return 200 "$uri\n"</c>), which
/// <see cref="ClientLoad.Http"/> checks. Everything it writes stays in the work directory.
/// </summary>
public static class NginxServer
{
    /// <summary>Writes the configuration, starts nginx in <paramref name="ns"/> and waits until it has written its PID file.</summary>
    /// <param name="ns">The network namespace.</param>
    /// <param name="workDirectory">Where its configuration, logs and temporary folders go.</param>
    /// <param name="endpoint">What it listens on.</param>
    /// <param name="connections">How many client connections it must hold at once (the worker's connection and descriptor limits follow).</param>
    public static DumpableServer Start(string ns, string workDirectory, IPEndPoint endpoint, int connections = 4000)
    {
        // A connection takes one of the worker's connection slots and one descriptor; the listener and
        // the worker's own files need a few more of each. nginx starts closing idle keep-alive
        // connections once fewer than 1/16 of its slots are free ("worker_connections are not
        // enough, reusing connections"): keep that much spare.
        // This machine caps every process at 20,000 descriptors: above what one worker can hold, the
        // connections are spread over several workers, each with its own listening socket on the port
        // (reuseport: the kernel hashes each new connection to one of them, so they fill evenly).
        const int MostPerWorker = 15_000;
        int workers = (connections + MostPerWorker - 1) / MostPerWorker;
        workers = Math.Max(1, workers);
        int slots = Math.Max(4096, connections / workers * 17 / 15 + 256);
        string config = Path.Combine(workDirectory, "nginx.conf");
        string errorLog = Path.Combine(workDirectory, "nginx-error.log");
        File.WriteAllText(config, $$"""
            daemon off;
            master_process on;
            worker_processes {{workers}};
            user root;
            pid {{workDirectory}}/nginx.pid;
            error_log {{errorLog}} info;
            worker_rlimit_nofile {{slots}};
            events { worker_connections {{slots}}; }
            http {
                access_log off;
                keepalive_timeout 600s;
                keepalive_requests 1000000;
                client_body_temp_path {{workDirectory}}/body;
                proxy_temp_path {{workDirectory}}/proxy;
                fastcgi_temp_path {{workDirectory}}/fastcgi;
                uwsgi_temp_path {{workDirectory}}/uwsgi;
                scgi_temp_path {{workDirectory}}/scgi;
                server {
                    listen {{endpoint}}{{(workers > 1 ? " reuseport" : "")}};
                    default_type text/plain;
                    location / { return 200 "$uri\n"; }
                }
            }
            """);
        DumpableServer nginx = DumpableServer.Start(ns, workDirectory, "nginx", "-c", config, "-p", workDirectory, "-e", errorLog);
        for (int i = 0; i < 500 && !File.Exists(Path.Combine(workDirectory, "nginx.pid")); i++)
            Thread.Sleep(10);
        Thread.Sleep(200); // the worker starts after the master writes the PID file
        return nginx;
    }

    /// <summary>nginx's error log in <paramref name="workDirectory"/>, for failure messages.</summary>
    public static string ErrorLog(string workDirectory)
    {
        string path = Path.Combine(workDirectory, "nginx-error.log");
        return File.Exists(path) ? File.ReadAllText(path) : "";
    }
}
