namespace TcpFreeze.Tests.Criu;

/// <summary>CRIU tests share one fixture and never run at the same time.</summary>
[CollectionDefinition("criu", DisableParallelization = true)]
public sealed class CriuCollection : ICollectionFixture<CriuFixture>;
