using System.Text;

namespace TcpFreeze.CriuHooks;

/// <summary>
/// The configuration file cannot be changed safely: the user's own lines contradict
/// the hook, or the managed block's markers are damaged. Nothing was written.
/// </summary>
public sealed class CriuConfigurationException(string message) : Exception(message);
