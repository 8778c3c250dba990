// Who is who: usernames the user types, userIds the protocol uses. The server resolves username → userId
// (GET /v1/usernames, IDN-31) and never the other way, so we learn a userId's name from our own lookups and from
// senders' claims, and believe a claim only when the lookup of the claimed name gives the authenticated sender.

const USERNAME = /^[a-z0-9_]{3,32}$/;

export interface Lookup {
  lookup(username: string): Promise<string | undefined>;
}

/** How a sender is shown, and whether that name is confirmed by the server's directory. */
export interface SenderName {
  name: string;
  verified: boolean;
}

export function isUsername(text: string): boolean {
  return USERNAME.test(text);
}

export class Contacts {
  private readonly byName = new Map<string, string>();
  private readonly byId = new Map<string, string>();
  private readonly inFlight = new Map<string, Promise<string | undefined>>();

  constructor(
    private readonly directory: Lookup,
    self: { username: string; userId: string },
  ) {
    this.remember(self.username, self.userId);
  }

  private remember(username: string, userId: string): void {
    this.byName.set(username, userId);
    this.byId.set(userId, username);
  }

  /** The userId of `username`, or undefined when nobody has it. Lookup errors propagate; answers are cached. */
  async resolve(username: string): Promise<string | undefined> {
    if (!isUsername(username)) throw new RangeError(`'${username}' is not a username (3 to 32 of a-z, 0-9, _)`);
    const known = this.byName.get(username);
    if (known !== undefined) return known;
    let pending = this.inFlight.get(username);
    if (pending === undefined) {
      pending = this.directory.lookup(username).finally(() => this.inFlight.delete(username));
      this.inFlight.set(username, pending);
    }
    const userId = await pending;
    if (userId !== undefined) this.remember(username, userId);
    return userId;
  }

  /** The username we know for `userId`, if any. */
  nameOf(userId: string): string | undefined {
    return this.byId.get(userId);
  }

  /** The display name of `userId`: its username when known, else `~<userId>`. */
  label(userId: string): string {
    return this.byId.get(userId) ?? `~${userId}`;
  }

  /**
   * The name to show for a message from `userId` that claims to come from `claimed`. A claim that the directory
   * does not confirm is shown next to the userId, never instead of it, so nobody can pass as somebody else.
   */
  async sender(userId: string, claimed: string | undefined): Promise<SenderName> {
    const known = this.byId.get(userId);
    if (known !== undefined) return { name: known, verified: true };
    if (claimed === undefined || !isUsername(claimed)) return { name: `~${userId}`, verified: false };
    let resolved: string | undefined;
    try {
      resolved = await this.resolve(claimed);
    } catch {
      return { name: `~${userId} (says ${claimed}, not checked)`, verified: false };
    }
    if (resolved === userId) return { name: claimed, verified: true };
    return { name: `~${userId} (says ${claimed}, which is not true)`, verified: false };
  }
}
