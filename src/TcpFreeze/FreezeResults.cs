namespace TcpFreeze;

