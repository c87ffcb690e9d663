using System.Text;

namespace TcpFreeze.CriuHooks;

/// <summary>The program that drives CRIU; it decides which configuration file carries the hook.</summary>
public enum CriuEngine
{
    /// <summary>CRIU run directly: <c>/etc/criu/default.conf</c>, which CRIU always reads (under runc and podman too).</summary>
    Criu,

    /// <summary>runc: <c>/etc/criu/runc.conf</c>, which runc hands to CRIU and CRIU reads after default.conf.</summary>
    Runc,

    /// <summary>podman, which checkpoints through runc: <c>/etc/criu/runc.conf</c> as well.</summary>
    Podman,
}
