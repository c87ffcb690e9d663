using System.Net;
using System.Net.Sockets;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// The common scenario of the CRIU tests: an echo server in namespace B of a fresh
/// test network, N client connections from namespace A sending sequence-numbered
/// messages, and a CRIU runner for the server's namespace with a pin root of its own.
/// </summary>
public sealed class BusyEchoServer : IAsyncDisposable
{
    private BusyEchoServer(TestNetwork network, PinRoot pins, DumpableServer server, ClientLoad load, CriuRunner runner)
    {
        Network = network;
        Pins = pins;
        Server = server;
        Load = load;
        Runner = runner;
    }

    public TestNetwork Network { get; }
    public PinRoot Pins { get; }
    public DumpableServer Server { get; }
    public ClientLoad Load { get; }
    public CriuRunner Runner { get; }
    public FreezerOptions ServerSide => Pins.Options(Network.B);

    public static BusyEchoServer Start(CriuFixture criu, string workDirectory, int connections, AddressFamily family = AddressFamily.InterNetwork)
    {
        var network = TestNetwork.Create();
        var pins = new PinRoot();
        DumpableServer? server = null;
        try
        {
            var endpoint = new IPEndPoint(network.AddressB(family), 7000);
            server = EchoServer.Start(network.NameB, workDirectory, endpoint);
            ClientLoad load = ClientLoad.Echo(network.A, endpoint, connections, TimeSpan.FromMilliseconds(25));
            Assert.True(load.WaitForProgress(_ => 3, TimeSpan.FromSeconds(30)), string.Join("; ", load.Failures.Take(5)));
            return new BusyEchoServer(network, pins, server, load, new CriuRunner(criu.Criu, criu.Hook, network.NameB, workDirectory, pins.Path));
        }
        catch
        {
            server?.Dispose();
            pins.Dispose();
            network.Dispose();
            throw;
        }
    }

    /// <summary>Asserts that every connection answers <paramref name="more"/> more messages within the bound, and none failed.</summary>
    public void AssertEveryConnectionFlows(int more, TimeSpan within, string when)
    {
        long[] start = Load.Snapshot();
        Assert.True(Load.WaitForProgress(id => start[id] + more, within),
            $"not every connection flowed {when}: {string.Join("; ", Load.Failures.Take(5))}; " +
            $"{Load.Connections.Count(c => c.Replies < start[c.Id] + more)} still waiting");
        Assert.Empty(Load.Failures);
    }

    public async ValueTask DisposeAsync()
    {
        await Load.DisposeAsync();
        Server.Dispose();
        try
        {
            TcpFreezer.Detach(ServerSide);
        }
        finally
        {
            Pins.Dispose();
            Network.Dispose();
        }
    }
}
