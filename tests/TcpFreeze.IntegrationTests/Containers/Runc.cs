using System.Text.Json;
using System.Text.Json.Nodes;

namespace TcpFreeze.Tests.Containers;

/// <summary>
/// runc driven directly on an <see cref="EngineHost"/>, its state (--root) in the test's
/// folder, one bundle per container whose rootfs is the busybox folder.
/// </summary>
public sealed class Runc(EngineHost host, string workDirectory, TestCgroup cgroup)
{
    private readonly string _root = Directory.CreateDirectory(Path.Combine(workDirectory, "runc", "state")).FullName;

    public TestCgroup Cgroup { get; } = cgroup;

    public EngineResult Run(params string[] arguments) => host.Execute("runc", ["--root", _root, .. arguments]);

    /// <summary>How the container gets its network.</summary>
    public enum Network
    {
        /// <summary>No network namespace of its own: the engine host's (a host-network container).</summary>
        Host,

        /// <summary>A new, empty network namespace that runc creates (CRIU dumps and restores it with the tasks).</summary>
        Private,
    }

    /// <summary>
    /// Writes a bundle for container <paramref name="id"/>: `runc spec`'s defaults, then the
    /// busybox rootfs, the host's /usr and the server folder read-only, the open-file limit,
    /// the test's cgroup, and the echo server as the process. Its stdio is redirected to the
    /// container's own /dev/null before the server starts: CRIU cannot dump a container
    /// whose stdio is a file of the host.
    /// </summary>
    public string CreateBundle(string id, string rootfs, string serverFolder, Network network, string address, int port)
    {
        string bundle = Directory.CreateDirectory(Path.Combine(workDirectory, "runc", "bundle-" + id)).FullName;
        Infrastructure.Run.Checked("runc", "spec", "--bundle", bundle);
        string file = Path.Combine(bundle, "config.json");
        JsonNode config = JsonNode.Parse(File.ReadAllText(file))!;
        config["root"] = new JsonObject { ["path"] = rootfs, ["readonly"] = true };
        JsonNode process = config["process"]!;
        process["terminal"] = false;
        process["args"] = new JsonArray("/bin/sh", "-c",
            $"exec /usr/bin/python3 /srv/{ContainerFiles.EchoServerFileName} {address} {port} </dev/null >/dev/null 2>&1");
        process["rlimits"] = new JsonArray(new JsonObject { ["type"] = "RLIMIT_NOFILE", ["hard"] = 20000, ["soft"] = 20000 });
        JsonArray namespaces = config["linux"]!["namespaces"]!.AsArray();
        if (network == Network.Host)
            foreach (JsonNode? ns in namespaces.Where(n => (string?)n!["type"] == "network").ToList())
                namespaces.Remove(ns);
        config["linux"]!["cgroupsPath"] = $"{Cgroup.Name}/{id}";
        JsonArray mounts = config["mounts"]!.AsArray();
        mounts.Add(new JsonObject { ["destination"] = "/usr", ["type"] = "bind", ["source"] = "/usr", ["options"] = new JsonArray("rbind", "ro") });
        mounts.Add(new JsonObject { ["destination"] = "/srv", ["type"] = "bind", ["source"] = serverFolder, ["options"] = new JsonArray("rbind", "ro") });
        File.WriteAllText(file, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return bundle;
    }

    public EngineResult Start(string id, string bundle) => Run("run", "--detach", "--bundle", bundle, id).Succeeds();

    public EngineResult Checkpoint(string id, string images, string work)
        => Run("checkpoint", "--tcp-established", "--image-path", images, "--work-path", work, id);

    public EngineResult Restore(string id, string bundle, string images, string work)
        => Run("restore", "--detach", "--tcp-established", "--image-path", images, "--work-path", work, "--bundle", bundle, id);

    /// <summary>The container's init process as the host sees it, or null when runc does not know the container.</summary>
    public int? Pid(string id)
    {
        EngineResult state = Run("state", id);
        return state.ExitCode == 0 && JsonNode.Parse(state.Output[state.Output.IndexOf('{')..])?["pid"]?.GetValue<int>() is int pid and > 0 ? pid : null;
    }

    /// <summary>Kills and deletes every container; returns what `runc list` still shows (should be nothing).</summary>
    public string RemoveEverything()
    {
        foreach (string id in Run("list", "--quiet").Output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            Run("kill", id, "KILL");
            Run("delete", "--force", id);
        }
        return Run("list", "--quiet").Output.Trim();
    }
}
