using System.Net;
using System.Net.Sockets;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>The hook's handlers called in-process against real sockets (no CRIU run).</summary>
[Trait("Privileges", "root")]
public sealed class HookHandlerTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("tcpfreeze-hook-").FullName;

    [RootFact]
    public void Post_dump_freezes_connections_that_appeared_after_pre_dump_and_adds_them_to_the_manifest()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        var endpoint = new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 7000);
        using DumpableServer server = EchoServer.Start(network.NameB, _work, endpoint);
        using Socket early = TcpPair.NewClient(network.A, AddressFamily.InterNetwork), late = TcpPair.NewClient(network.A, AddressFamily.InterNetwork);
        early.Connect(endpoint);
        late.Connect(endpoint);
        ConnectionKey earlyKey = new ConnectionKey((IPEndPoint)early.LocalEndPoint!, endpoint).Reversed();
        ConnectionKey lateKey = new ConnectionKey((IPEndPoint)late.LocalEndPoint!, endpoint).Reversed();
        // What pre-dump saw: the listener and the early connection only.
        FreezeManifest.Create(server.Pid, TimeSpan.FromSeconds(30), [earlyKey], [new EndpointKey(endpoint)]).Write(_work);

        FreezerOptions options = pins.Options(network.B);
        var log = new StringWriter();
        var settings = new HookSettings { PinRoot = pins.Path, Lease = TimeSpan.FromSeconds(30) };
        var environment = new CriuEnvironment(CriuAction.PostDump, "post-dump", _work, server.Pid);
        try
        {
            int code = network.B.Run(() =>
            {
                TcpFreezer.Attach(options).Dispose();
                return CriuHookDispatcher.CreateTcpFreeze().Dispatch(environment, new HookContext(settings, log, Environment.ProcessId, null));
            });
            Assert.True(code == 0, log.ToString());
            Assert.Contains("post-dump: froze 1 connections and 0 listening endpoints that appeared since pre-dump", log.ToString());
            using TcpFreezer freezer = TcpFreezer.Open(options);
            Assert.Equal(lateKey, Assert.Single(freezer.ListConnections()).Key);
            FreezeManifest updated = FreezeManifest.Read(_work);
            Assert.Equal(new[] { earlyKey, lateKey }.Select(k => k.ToString()).Order(), updated.Connections.Order());
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);
}
