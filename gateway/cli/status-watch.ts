import { type IntersectionView, type OperatorClient, OperatorError } from "../operator/operator-client.js";

/** A redraw a second: the cycle second is computed on this side, from each cycle's published start. */
const REDRAW_MS = 1000;
/** The first frame waits this long for the retained statuses the subscription brings. */
const FIRST_FRAME_MS = 300;
const CLEAR_SCREEN = "\x1b[H\x1b[2J";

/**
 * `greenwave status --watch`: follows the statuses as the gateways publish them and redraws every
 * second until SIGINT or SIGTERM (then exit 0), or until the broker connection is lost (exit 1). What it
 * holds is bounded by the intersections on the broker; the connection closes within a second.
 */
export async function watchStatus(
  client: OperatorClient,
  corridor: string | null,
  render: (views: readonly IntersectionView[], nowMs: number) => string,
  options: { json: boolean },
): Promise<void> {
  // Before anything slow: until a listener exists, SIGINT's default action ends the process (130).
  let stopped = () => {};
  const stopRequested = new Promise<"stopped">((resolve) => {
    stopped = () => resolve("stopped");
  });
  process.once("SIGINT", stopped);
  process.once("SIGTERM", stopped);
  let timer: NodeJS.Timeout | null = null;
  try {
    const follower = await client.follow(corridor);
    const out = process.stdout;
    const draw = () => {
      const frame = render(follower.views(), Date.now());
      if (options.json) out.write(frame);
      else {
        const title = `greenwave status  ${client.url}  ${new Date().toTimeString().slice(0, 8)}  (Ctrl-C to stop)\n`;
        // A terminal redraws in place; a pipe or a file gets one frame after the other.
        out.write(out.isTTY ? `${CLEAR_SCREEN}${title}${frame}` : `${title}${frame}\n`);
      }
    };
    timer = setTimeout(function redraw() {
      draw();
      timer = setTimeout(redraw, REDRAW_MS);
    }, FIRST_FRAME_MS);
    const end = await Promise.race([stopRequested, follower.lost.then(() => "lost" as const)]);
    follower.stop();
    if (end === "lost") throw new OperatorError(`lost the connection to the broker at ${client.url}`);
  } finally {
    if (timer) clearTimeout(timer);
    process.off("SIGINT", stopped);
    process.off("SIGTERM", stopped);
    await client.close();
  }
}
