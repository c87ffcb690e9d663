namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// Tests that hold the resume to a bound in milliseconds (the kick, the replay): they run alone, after the parallel
/// classes, so that another class's namespaces and builds on the same two cores do not stretch what they bound.
/// </summary>
[CollectionDefinition("resume timing", DisableParallelization = true)]
public sealed class ResumeTimingCollection;
