namespace TcpFreeze.Tests.Criu;

/// <summary>
/// What every class of CRIU runs shares: the "criu" collection (one CRIU run at a time, one
/// <see cref="CriuFixture"/> for all: take it as a constructor parameter), root, and a work folder of
/// the test's own (images, scripts, server files) that is removed after each test.
/// </summary>
[Collection("criu")]
[Trait("Privileges", "root")]
[Trait("Needs", "criu")]
public abstract class CriuTest(string workPrefix) : IDisposable
{
    /// <summary>The test's own folder under /tmp, named after <c>workPrefix</c>.</summary>
    protected readonly string _work = Directory.CreateTempSubdirectory(workPrefix).FullName;

    public void Dispose()
    {
        Directory.Delete(_work, recursive: true);
        GC.SuppressFinalize(this);
    }
}
