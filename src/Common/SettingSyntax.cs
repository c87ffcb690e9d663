using System.Globalization;

namespace TcpFreeze;

/// <summary>
/// The text forms of TcpFreeze's settings, one rule each, shared by both front ends (the command line and the
/// CRIU hook's settings file), which word the errors themselves. Compiled into each front end, not the library.
/// </summary>
/// <remarks>Thread safety: stateless and pure; safe on any thread.</remarks>
internal static class SettingSyntax
{
    /// <summary>The shortest lease: a smaller positive number (1e-9) rounds to a zero TimeSpan, a lease that ends before it starts.</summary>
    public const double MinLeaseSeconds = 0.001;

    /// <summary>The longest lease: a day. A freeze that must hold longer is a mistake more often than a plan.</summary>
    public const double MaxLeaseSeconds = 86_400;

    /// <summary>The lease rule in words, for error messages.</summary>
    public const string LeaseRule = "a number of seconds from 0.001 to 86400";

    /// <summary>Parses a lease in seconds ("120", "0.5", "1e3"): finite, from <see cref="MinLeaseSeconds"/> to <see cref="MaxLeaseSeconds"/>.</summary>
    public static bool TryParseLease(string? text, out TimeSpan lease)
    {
        lease = default;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds)
            || !double.IsFinite(seconds) || seconds < MinLeaseSeconds || seconds > MaxLeaseSeconds)
            return false;
        lease = TimeSpan.FromSeconds(seconds);
        return true;
    }

    /// <summary>
    /// What is wrong with a lease text that <see cref="TryParseLease"/> refuses, in words
    /// ("'1e9' is too long: a lease must be at most 86,400 s (a day)"); null when it is a valid lease.
    /// </summary>
    public static string? LeaseProblem(string? text)
    {
        if (TryParseLease(text, out _))
            return null;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds) || double.IsNaN(seconds))
            return $"'{text}' is not a number of seconds; a lease is {LeaseRule}";
        if (seconds > MaxLeaseSeconds)
            return $"'{text}' is too long: a lease must be at most {MaxLeaseSeconds.ToString("N0", CultureInfo.InvariantCulture)} s (a day)";
        return $"'{text}' is too short: a lease must be at least {MinLeaseSeconds.ToString(CultureInfo.InvariantCulture)} s";
    }

    /// <summary>Parses an ingress hook: exactly "xdp" or "tc".</summary>
    public static bool TryParseIngressHook(string? text, out IngressHook hook)
    {
        (bool ok, hook) = text switch
        {
            "xdp" => (true, IngressHook.Xdp),
            "tc" => (true, IngressHook.Tc),
            _ => (false, IngressHook.Xdp),
        };
        return ok;
    }

    /// <summary>Parses an XDP mode: exactly "auto", "native" or "generic".</summary>
    public static bool TryParseXdpMode(string? text, out XdpAttachMode mode)
    {
        (bool ok, mode) = text switch
        {
            "auto" => (true, XdpAttachMode.Auto),
            "native" => (true, XdpAttachMode.Native),
            "generic" => (true, XdpAttachMode.Generic),
            _ => (false, XdpAttachMode.Auto),
        };
        return ok;
    }
}
