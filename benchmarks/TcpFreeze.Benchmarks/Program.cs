using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

// In-process: the benchmarks need root, namespaces and bpffs, and a short job keeps a
// full run to a few minutes on a 2-core VM. Run as root:
//   dotnet run -c Release --project benchmarks/TcpFreeze.Benchmarks -- --filter '*'
if (args is ["--kernel-figures"])
{
    TcpFreeze.Benchmarks.PacketCostBenchmarks.PrintKernelFigures();
    return;
}

IConfig config = DefaultConfig.Instance
    .AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithLaunchCount(1).WithWarmupCount(3).WithIterationCount(10))
    .WithOptions(ConfigOptions.DisableOptimizationsValidator);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
