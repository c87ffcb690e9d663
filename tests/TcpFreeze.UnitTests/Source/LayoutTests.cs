using System.Net;
using System.Reflection;
using System.Runtime.InteropServices;
using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// The managed mirrors of kernel and libbpf structs match the C definitions, checked
/// against independent sources: the BTF clang wrote into the embedded object, and a
/// C program compiled against libbpf's own headers.
/// </summary>
public sealed class LayoutTests
{
    private static BtfStruct Btf(string name)
    {
        using BpfObject obj = BpfObject.Open(BpfNames.LoadObject(), "tcpfreeze");
        return obj.GetBtfStruct(name);
    }

    [Fact]
    public void ConnectionKey_bytes_sit_where_the_BTF_of_tf_conn_key_puts_them()
    {
        BtfStruct c = Btf("tf_conn_key");
        Assert.Equal(c.Size, Marshal.SizeOf<ConnectionKey>());
        Assert.Equal(ConnectionKey.Size, c.Size);

        var key = ConnectionKey.Parse("198.18.0.1:8080", "198.18.0.2:40000");
        ReadOnlySpan<byte> bytes = ConnectionKey.AsBytes(in key);
        Assert.Equal(4, bytes[c.OffsetOf("family")]);
        Assert.Equal(new byte[] { 0x1F, 0x90 }, bytes.Slice(c.OffsetOf("local_port"), 2).ToArray());   // 8080, network order
        Assert.Equal(new byte[] { 0x9C, 0x40 }, bytes.Slice(c.OffsetOf("remote_port"), 2).ToArray());  // 40000
        Assert.Equal(new byte[] { 198, 18, 0, 1 }, bytes.Slice(c.OffsetOf("local_addr"), 4).ToArray());
        Assert.Equal(new byte[] { 198, 18, 0, 2 }, bytes.Slice(c.OffsetOf("remote_addr"), 4).ToArray());
        Assert.All(bytes.Slice(c.OffsetOf("local_addr") + 4, 12).ToArray(), b => Assert.Equal(0, b));

        var v6 = ConnectionKey.Parse("[2001:db8::1]:443", "[2001:db8::2]:50000");
        ReadOnlySpan<byte> v6Bytes = ConnectionKey.AsBytes(in v6);
        Assert.Equal(6, v6Bytes[c.OffsetOf("family")]);
        Assert.Equal(IPAddress.Parse("2001:db8::2").GetAddressBytes(), v6Bytes.Slice(c.OffsetOf("remote_addr"), 16).ToArray());
    }

    [Fact]
    public void EndpointKey_bytes_sit_where_the_BTF_of_tf_endpoint_key_puts_them()
    {
        BtfStruct c = Btf("tf_endpoint_key");
        Assert.Equal(c.Size, Marshal.SizeOf<EndpointKey>());
        var key = EndpointKey.Parse("[2001:db8::7]:8443");
        ReadOnlySpan<byte> bytes = MemoryMarshal.AsBytes(new ReadOnlySpan<EndpointKey>(in key));
        Assert.Equal(6, bytes[c.OffsetOf("family")]);
        Assert.Equal(new byte[] { 0x20, 0xFB }, bytes.Slice(c.OffsetOf("port"), 2).ToArray());
        Assert.Equal(IPAddress.Parse("2001:db8::7").GetAddressBytes(), bytes.Slice(c.OffsetOf("addr"), 16).ToArray());
    }

    [Fact]
    public void FreezeEntry_matches_tf_entry()
    {
        BtfStruct c = Btf("tf_entry");
        Assert.Equal(c.Size, Marshal.SizeOf<FreezeEntry>());
        Assert.Equal(c.OffsetOf("deadline_ns"), (int)Marshal.OffsetOf<FreezeEntry>(nameof(FreezeEntry.DeadlineNs)));
        Assert.Equal(c.OffsetOf("dropped"), (int)Marshal.OffsetOf<FreezeEntry>(nameof(FreezeEntry.Dropped)));
        Assert.Equal(c.OffsetOf("first_drop_ns"), (int)Marshal.OffsetOf<FreezeEntry>(nameof(FreezeEntry.FirstDropNs)));
        Assert.Equal(c.OffsetOf("remote_seq"), (int)Marshal.OffsetOf<FreezeEntry>(nameof(FreezeEntry.RemoteSeq)));
        Assert.Equal(c.OffsetOf("local_seq"), (int)Marshal.OffsetOf<FreezeEntry>(nameof(FreezeEntry.LocalSeq)));
        Assert.Equal(c.OffsetOf("remote_data_drops"), (int)Marshal.OffsetOf<FreezeEntry>(nameof(FreezeEntry.RemoteDataDrops)));
        Assert.Equal(c.OffsetOf("local_data_drops"), (int)Marshal.OffsetOf<FreezeEntry>(nameof(FreezeEntry.LocalDataDrops)));
    }

    [Fact]
    public void The_socket_iterator_parser_reads_tf_socket_record_where_the_C_compiler_puts_each_field()
    {
        // The program's record is a local variable, which BTF does not describe: ask the compiler about the header.
        string[] fields = ["inode", "netns", "fd", "local", "remote", "family", "local_port", "remote_port", "state"];
        CLayout layout = CLayout.Measure($"#include \"{Path.Combine(Repository.Root, "bpf", "tcpfreeze.h")}\"",
            "S(tf_socket_record); " + string.Concat(fields.Select(f => $"O(tf_socket_record, {f}); ")));
        Assert.Equal(SocketIterator.RecordSize, layout["tf_socket_record"]);
        Assert.Equal(
            [("inode", 0), ("netns", 8), ("fd", 12), ("local", 16), ("remote", 32), ("family", 48), ("local_port", 50), ("remote_port", 52), ("state", 54)],
            fields.Select(f => (f, layout[$"tf_socket_record.{f}"])));
        int OffsetOf(string field) => layout[$"tf_socket_record.{field}"];

        // One record as the program writes it: 198.18.0.1:8080 -> 198.18.0.2:40000, established, netns 7.
        byte[] record = new byte[SocketIterator.RecordSize];
        BitConverter.TryWriteBytes(record.AsSpan(OffsetOf("inode")), 4242UL);
        BitConverter.TryWriteBytes(record.AsSpan(OffsetOf("netns")), 7U);
        new byte[] { 198, 18, 0, 1 }.CopyTo(record, OffsetOf("local"));
        new byte[] { 198, 18, 0, 2 }.CopyTo(record, OffsetOf("remote"));
        BitConverter.TryWriteBytes(record.AsSpan(OffsetOf("family")), (ushort)2);
        BitConverter.TryWriteBytes(record.AsSpan(OffsetOf("local_port")), (ushort)8080);   // host order
        record[OffsetOf("remote_port")] = 0x9C; record[OffsetOf("remote_port") + 1] = 0x40; // 40000, network order
        record[OffsetOf("state")] = 1;
        var entries = new List<ProcNetTcpEntry>();
        SocketIterator.Parse(record, 7, [], entries);
        Assert.Equal(new ProcNetTcpEntry(IPEndPoint.Parse("198.18.0.1:8080"), IPEndPoint.Parse("198.18.0.2:40000"), TcpSocketState.Established, 4242), Assert.Single(entries));
    }

    [Fact]
    public void ReplayRecord_matches_tf_replay()
    {
        BtfStruct c = Btf("tf_replay");
        Assert.Equal(c.Size, Marshal.SizeOf<ReplayRecord>());
        Assert.Equal(c.OffsetOf("recorded_ns"), (int)Marshal.OffsetOf<ReplayRecord>(nameof(ReplayRecord.RecordedNs)));
        Assert.Equal(c.OffsetOf("family"), (int)Marshal.OffsetOf<ReplayRecord>(nameof(ReplayRecord.Family)));
        Assert.Equal(c.OffsetOf("tcp_offset"), (int)Marshal.OffsetOf<ReplayRecord>(nameof(ReplayRecord.TcpOffset)));
        Assert.Equal(c.OffsetOf("captured"), (int)Marshal.OffsetOf<ReplayRecord>(nameof(ReplayRecord.Captured)));
        Assert.Equal(c.OffsetOf("ip_length"), (int)Marshal.OffsetOf<ReplayRecord>(nameof(ReplayRecord.IpLength)));
        Assert.Equal(c.OffsetOf("bytes"), (int)Marshal.OffsetOf<ReplayRecord>(nameof(ReplayRecord.Bytes)));
        Assert.Equal(ReplayRecord.Capacity, c.Size - c.OffsetOf("bytes"));
    }

    [Fact]
    public void Every_libbpf_function_the_binding_declares_is_exported_by_libbpf_so_1()
    {
        // Binding is lazy: a missing export would only fail at its first call.
        nint library = NativeLibrary.Load("libbpf.so.1");
        var missing = new List<string>();
        MethodInfo[] imports = typeof(BpfMap).Assembly.GetType("TcpFreeze.Ebpf.Interop.Libbpf")!
            .GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)
            .Where(m => m.GetCustomAttribute<LibraryImportAttribute>() is not null)
            .ToArray();
        Assert.True(imports.Length >= 30, $"only {imports.Length} imports found");
        foreach (MethodInfo method in imports)
        {
            string entry = method.GetCustomAttribute<LibraryImportAttribute>()!.EntryPoint ?? method.Name;
            if (!NativeLibrary.TryGetExport(library, entry, out _))
                missing.Add(entry);
        }
        Assert.Empty(missing);
    }

    /// <summary>Compiles a C program against /usr/include/bpf and compares sizes and offsets.</summary>
    [Fact]
    public void Opts_structs_match_libbpf_headers_byte_for_byte()
    {
        CLayout c = CLayout.Measure("""
            #include <bpf/libbpf.h>
            #include <bpf/bpf.h>
            """, """
                S(bpf_object_open_opts); O(bpf_object_open_opts, object_name);
                S(bpf_map_batch_opts); O(bpf_map_batch_opts, elem_flags); O(bpf_map_batch_opts, flags);
                S(bpf_test_run_opts); O(bpf_test_run_opts, data_in); O(bpf_test_run_opts, data_out);
                O(bpf_test_run_opts, data_size_in); O(bpf_test_run_opts, data_size_out); O(bpf_test_run_opts, ctx_in);
                O(bpf_test_run_opts, ctx_size_in); O(bpf_test_run_opts, retval); O(bpf_test_run_opts, repeat);
                O(bpf_test_run_opts, duration);
                S(bpf_xdp_attach_opts); O(bpf_xdp_attach_opts, old_prog_fd);
                S(bpf_xdp_query_opts); O(bpf_xdp_query_opts, prog_id); O(bpf_xdp_query_opts, skb_prog_id); O(bpf_xdp_query_opts, attach_mode);
                S(bpf_tc_hook); O(bpf_tc_hook, ifindex); O(bpf_tc_hook, attach_point); O(bpf_tc_hook, parent);
                S(bpf_prog_load_opts); O(bpf_prog_load_opts, log_level); O(bpf_prog_load_opts, log_size); O(bpf_prog_load_opts, log_buf);
                O(bpf_prog_info, id); O(bpf_prog_info, nr_map_ids); O(bpf_prog_info, map_ids); O(bpf_prog_info, name);
                S(bpf_link_create_opts); O(bpf_link_create_opts, iter_info); O(bpf_link_create_opts, iter_info_len);
                printf("bpf_iter_link_info.task.tid %zu\n", offsetof(union bpf_iter_link_info, task.tid));
                printf("bpf_iter_link_info.task.pid %zu\n", offsetof(union bpf_iter_link_info, task.pid));
                printf("bpf_iter_link_info.task.pid_fd %zu\n", offsetof(union bpf_iter_link_info, task.pid_fd));
                S(bpf_tc_opts); O(bpf_tc_opts, prog_fd); O(bpf_tc_opts, flags); O(bpf_tc_opts, prog_id); O(bpf_tc_opts, handle); O(bpf_tc_opts, priority);
            """);

        Type libbpf = typeof(BpfMap).Assembly.GetType("TcpFreeze.Ebpf.Interop.Libbpf")!;
        Type Managed(string name) => libbpf.GetNestedType(name, BindingFlags.NonPublic)!;
        void Size(string cName, string managed) => c.AssertSize(cName, Managed(managed));
        void Offset(string cName, string managed, string field) => c.AssertOffset(cName, Managed(managed), field);

        Size("bpf_object_open_opts", "BpfObjectOpenOpts");
        Offset("bpf_object_open_opts.object_name", "BpfObjectOpenOpts", "ObjectName");
        Size("bpf_map_batch_opts", "BpfMapBatchOpts");
        Offset("bpf_map_batch_opts.elem_flags", "BpfMapBatchOpts", "ElemFlags");
        Offset("bpf_map_batch_opts.flags", "BpfMapBatchOpts", "Flags");
        Size("bpf_test_run_opts", "BpfTestRunOpts");
        foreach ((string f, string m) in new[] { ("data_in", "DataIn"), ("data_out", "DataOut"), ("data_size_in", "DataSizeIn"), ("data_size_out", "DataSizeOut"),
                     ("ctx_in", "CtxIn"), ("ctx_size_in", "CtxSizeIn"), ("retval", "RetVal"), ("repeat", "Repeat"), ("duration", "Duration") })
            Offset($"bpf_test_run_opts.{f}", "BpfTestRunOpts", m);
        Size("bpf_xdp_attach_opts", "BpfXdpAttachOpts");
        Offset("bpf_xdp_attach_opts.old_prog_fd", "BpfXdpAttachOpts", "OldProgFd");
        Size("bpf_xdp_query_opts", "BpfXdpQueryOpts");
        Offset("bpf_xdp_query_opts.prog_id", "BpfXdpQueryOpts", "ProgId");
        Offset("bpf_xdp_query_opts.skb_prog_id", "BpfXdpQueryOpts", "SkbProgId");
        Offset("bpf_xdp_query_opts.attach_mode", "BpfXdpQueryOpts", "AttachMode");
        Size("bpf_tc_hook", "BpfTcHook");
        foreach ((string f, string m) in new[] { ("ifindex", "IfIndex"), ("attach_point", "AttachPoint"), ("parent", "Parent") })
            Offset($"bpf_tc_hook.{f}", "BpfTcHook", m);
        Size("bpf_prog_load_opts", "BpfProgLoadOpts");
        foreach ((string f, string m) in new[] { ("log_level", "LogLevel"), ("log_size", "LogSize"), ("log_buf", "LogBuffer") })
            Offset($"bpf_prog_load_opts.{f}", "BpfProgLoadOpts", m);
        foreach ((string f, string m) in new[] { ("id", "Id"), ("nr_map_ids", "NrMapIds"), ("map_ids", "MapIds"), ("name", "Name") })
            Offset($"bpf_prog_info.{f}", "BpfProgInfo", m);
        Size("bpf_link_create_opts", "BpfLinkCreateOpts");
        Offset("bpf_link_create_opts.iter_info", "BpfLinkCreateOpts", "IterInfo");
        Offset("bpf_link_create_opts.iter_info_len", "BpfLinkCreateOpts", "IterInfoLength");
        foreach ((string f, string m) in new[] { ("task.tid", "Tid"), ("task.pid", "Pid"), ("task.pid_fd", "PidFd") })
            Offset($"bpf_iter_link_info.{f}", "BpfIterTaskInfo", m);
        Size("bpf_tc_opts", "BpfTcOpts");
        foreach ((string f, string m) in new[] { ("prog_fd", "ProgFd"), ("flags", "Flags"), ("prog_id", "ProgId"), ("handle", "Handle"), ("priority", "Priority") })
            Offset($"bpf_tc_opts.{f}", "BpfTcOpts", m);
    }
}
