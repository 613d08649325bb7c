/**
 * Why a link could not be opened, in words a technician can act on: a serial device that does not
 * exist is a cable or adapter (or a name that changed: use the /dev/serial/by-id/ link), a denied one
 * is the gateway's user missing from the dialout group, a refused TCP connection is nothing listening.
 */
export function explainOpenError(error: unknown, description: string): string {
  const code = (error as NodeJS.ErrnoException | null)?.code ?? errnoInMessage(error);
  const message = error instanceof Error ? error.message : String(error);
  switch (code) {
    case "ENOENT":
      return `${description}: no such device: check the adapter and its cable, and name it by its /dev/serial/by-id/ link (ttyUSB numbers change between boots)`;
    case "EACCES":
    case "EPERM":
      return `${description}: permission denied: the gateway's user must be in the dialout group (usermod -aG dialout greenwave, then restart the service; the package does this)`;
    case "EBUSY":
      return `${description}: the device is in use by another process (another gateway, a terminal program, ModemManager?)`;
    case "ECONNREFUSED":
      return `${description}: connection refused: nothing listens there (the module's address or port, or the module is off)`;
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `${description}: no route to the module: check the cabinet's network (cable, switch, address)`;
    case "ETIMEDOUT":
      return `${description}: no answer to the connection: the module is off or the address is wrong`;
    default:
      return `${description}: cannot open: ${message}`;
  }
}

/** serialport's bindings put the errno name in the message ("Error: No such file or directory, cannot open …"). */
function errnoInMessage(error: unknown): string | undefined {
  const message = error instanceof Error ? error.message : String(error);
  if (/no such file or directory/i.test(message)) return "ENOENT";
  if (/permission denied/i.test(message)) return "EACCES";
  if (/resource busy|device or resource busy/i.test(message)) return "EBUSY";
  return undefined;
}
