namespace TcpFreeze.Tests.Infrastructure;

/// <summary>The checkout the tests were built from.</summary>
public static class Repository
{
    /// <summary>The folder that holds TcpFreeze.slnx, found above the test assembly.</summary>
    public static string Root
    {
        get
        {
            for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "TcpFreeze.slnx")))
                    return d.FullName;
            throw new InvalidOperationException("cannot find the repository root (TcpFreeze.slnx) above " + AppContext.BaseDirectory);
        }
    }
}
