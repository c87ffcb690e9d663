using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

// In-process: the benchmarks need root, namespaces and bpffs. Run as root, see
// benchmarks/README.md for the commands and how long each takes:
//   dotnet run -c Release --project benchmarks/TcpFreeze.Benchmarks -- --filter '*'
//   ... -- --smoke --filter '*'      every benchmark once, N <= 100 (a minute or two)
//   ... -- --throughput              unfrozen traffic's requests/s under each lock method
//   ... -- --kernel-figures          BPF_PROG_TEST_RUN's own per-packet means
if (args is ["--kernel-figures"])
{
    TcpFreeze.Benchmarks.PacketCostBenchmarks.PrintKernelFigures();
    return 0;
}
if (args is ["--throughput", ..])
    return TcpFreeze.Benchmarks.ThroughputComparison.Run(args[1..]);

TcpFreeze.Benchmarks.BenchSettings.Smoke = args.Contains("--smoke");
args = args.Where(a => a != "--smoke").ToArray();

// The run's job, for the fast benchmarks; the slow ones (iptables, nft) override its
// counts with a mutator of their own (SlowOperationConfig). A smoke run keeps the fast
// ones short but still warmed up, so its ratios mean something.
Job job = Job.Default.WithLaunchCount(1).WithWarmupCount(TcpFreeze.Benchmarks.BenchSettings.Smoke ? 1 : 3)
    .WithIterationCount(TcpFreeze.Benchmarks.BenchSettings.Smoke ? 3 : 10);
IConfig config = DefaultConfig.Instance
    .AddJob(job.WithToolchain(InProcessEmitToolchain.Instance).AsDefault())
    .WithOptions(ConfigOptions.DisableOptimizationsValidator);
IEnumerable<Summary> summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
TcpFreeze.Benchmarks.LockCostReport.Write(summaries);
return 0;
