using System.Diagnostics;
using System.Net.Sockets;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// One direction of checked traffic on a connection: a writer thread sends a known byte
/// pattern (byte i is a function of i, so a lost, repeated or reordered byte shows) in
/// paced chunks for a given time, and a reader thread reads and checks every byte. The reader
/// can be held (<see cref="HoldReader"/>) so that windows fill up. Every socket error on either
/// thread is kept, not swallowed.
/// </summary>
public sealed class PatternStream
{
    private readonly Socket _from, _to;
    private readonly int _chunk;
    private readonly TimeSpan _interval, _writeFor;
    private readonly ManualResetEventSlim _readerGo = new(true);
    private readonly Thread _writer, _reader;
    private long _written = -1, _read;
    private volatile bool _writerDone;

    public PatternStream(string name, Socket from, Socket to, int chunk, TimeSpan interval, TimeSpan writeFor)
    {
        Name = name;
        _from = from;
        _to = to;
        _chunk = chunk;
        _interval = interval;
        _writeFor = writeFor;
        _writer = new Thread(Write) { IsBackground = true, Name = name + " writer" };
        _reader = new Thread(Read) { IsBackground = true, Name = name + " reader" };
    }

    public string Name { get; }
    public Exception? WriterError { get; private set; }
    public Exception? ReaderError { get; private set; }
    public long BytesRead => Interlocked.Read(ref _read);

    public static byte PatternAt(long index) => (byte)(index * 7 + index / 251);

    public void Start()
    {
        _writer.Start();
        _reader.Start();
    }

    /// <summary>Stops the reader from reading until <see cref="ReleaseReader"/>.</summary>
    public void HoldReader() => _readerGo.Reset();

    public void ReleaseReader() => _readerGo.Set();

    /// <summary>
    /// Waits (bounded) until the writer has finished and the reader has read every byte it
    /// wrote, then asserts that no error happened on either side and the counts match.
    /// </summary>
    public void AssertComplete(TimeSpan timeout)
    {
        ReleaseReader();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout && WriterError is null && ReaderError is null
               && !(_writerDone && BytesRead == Interlocked.Read(ref _written)))
            Thread.Sleep(20);
        Assert.True(WriterError is null, $"{Name}: the writing side failed: {WriterError}");
        Assert.True(ReaderError is null, $"{Name}: the reading side failed: {ReaderError}");
        Assert.True(_writerDone, $"{Name}: the writer did not finish within {timeout}");
        Assert.True(BytesRead == Interlocked.Read(ref _written), $"{Name}: {BytesRead} of {Interlocked.Read(ref _written)} bytes arrived within {timeout}");
        Assert.True(_written > 0, $"{Name}: nothing was written");
    }

    private void Write()
    {
        var buffer = new byte[_chunk];
        long index = 0;
        var clock = Stopwatch.StartNew();
        try
        {
            while (clock.Elapsed < _writeFor)
            {
                for (int i = 0; i < buffer.Length; i++)
                    buffer[i] = PatternAt(index + i);
                int sent = 0;
                while (sent < buffer.Length)
                    sent += _from.Send(buffer, sent, buffer.Length - sent, SocketFlags.None);
                index += buffer.Length;
                Thread.Sleep(_interval);
            }
        }
        catch (Exception e)
        {
            WriterError = e;
        }
        finally
        {
            Interlocked.Exchange(ref _written, index);
            _writerDone = true;
        }
    }

    private void Read()
    {
        var buffer = new byte[64 * 1024];
        long index = 0;
        try
        {
            while (true)
            {
                _readerGo.Wait();
                if (!_to.Poll(TimeSpan.FromMilliseconds(100), SelectMode.SelectRead))
                {
                    if (_writerDone && index == Interlocked.Read(ref _written))
                        return;
                    continue;
                }
                int n = _to.Receive(buffer);
                if (n == 0)
                    throw new IOException($"the connection was closed after {index} bytes");
                for (int i = 0; i < n; i++, index++)
                    if (buffer[i] != PatternAt(index))
                        throw new InvalidDataException($"byte {index} is {buffer[i]}, expected {PatternAt(index)}: a byte was lost, repeated or reordered");
                Interlocked.Exchange(ref _read, index);
            }
        }
        catch (Exception e)
        {
            ReaderError = e;
        }
    }
}
