import type { PeerCertificate } from "node:tls";
import type { Principal } from "./acl.js";
import type { BrokerUser } from "./users.js";

/**
 * Client certificates (mTLS, docs/mtls.md). The rule is Mosquitto's `use_identity_as_username`, so
 * that one users file (or ACL file) serves both brokers: a certificate issued by the broker's client
 * CA (`--client-ca`) logs in as the users-file entry whose `username` is the certificate's common name
 * (CN), with that entry's role, corridor and intersection. Nothing else of the subject counts (O, OU…):
 * whoever runs the CA decides the CN, and the users file decides what a CN may do.
 */

/** Why the broker closed a connection right after its TLS handshake, as a metric label. */
export type CertificateRefusal =
  "no-certificate" | "unknown-issuer" | "expired" | "not-yet-valid" | "not-for-clients" | "invalid";

/** What a TLS connection's client certificate is, found once when its handshake ends. */
export type ClientCertificate =
  | { readonly kind: "none" }
  | {
      readonly kind: "refused";
      readonly refusal: CertificateRefusal;
      /** OpenSSL's verification error (CERT_HAS_EXPIRED…), for the log. */
      readonly code: string;
      readonly details: CertificateDetails;
    }
  | {
      readonly kind: "verified";
      /** The one CN of the subject; null when the subject has none or several (never a login). */
      readonly name: string | null;
      readonly details: CertificateDetails;
    };

/** What the broker logs of a certificate: enough to find it in the CA's records. */
export interface CertificateDetails {
  readonly subject: string;
  readonly issuer: string;
  readonly serial: string;
  readonly fingerprint256: string;
  readonly validTo: string;
}

/** What the TLS socket says about its peer (node:tls `TLSSocket`), after the handshake. */
export interface PeerSide {
  readonly authorized: boolean;
  readonly authorizationError?: Error | string | null;
  getPeerCertificate(): PeerCertificate | Record<string, never>;
}

/** The client certificate of a TLS connection to a broker that asks for one (`requestCert`). */
export function clientCertificateOf(socket: PeerSide): ClientCertificate {
  const peer = socket.getPeerCertificate();
  if (!("subject" in peer) || peer.subject === undefined) return { kind: "none" };
  const details: CertificateDetails = {
    subject: distinguishedName(peer.subject),
    issuer: distinguishedName(peer.issuer),
    serial: peer.serialNumber,
    fingerprint256: peer.fingerprint256,
    validTo: peer.valid_to,
  };
  if (!socket.authorized) {
    const code = String(socket.authorizationError ?? "UNSPECIFIED");
    return { kind: "refused", refusal: refusalOf(code), code, details };
  }
  const cn = (peer.subject as Record<string, string | string[] | undefined>).CN;
  return { kind: "verified", name: typeof cn === "string" && cn !== "" ? cn : null, details };
}

/**
 * Whether a connection may go on to MQTT: a certificate that did not verify never does (nothing of
 * it is read as MQTT), nor, with `required`, a connection without one. Null: it may.
 */
export function tlsRefusal(
  certificate: ClientCertificate,
  required: boolean,
): { readonly refusal: CertificateRefusal; readonly message: string; readonly hint: string } | null {
  if (certificate.kind === "verified") return null;
  if (certificate.kind === "none")
    return required
      ? {
          refusal: "no-certificate",
          message: "connection closed: no client certificate (the broker requires one)",
          hint: REFUSAL_HINT["no-certificate"],
        }
      : null;
  return {
    refusal: certificate.refusal,
    message: `connection closed: client certificate not accepted: ${REFUSAL_TEXT[certificate.refusal]}`,
    hint: REFUSAL_HINT[certificate.refusal],
  };
}

const REFUSAL_TEXT: Readonly<Record<CertificateRefusal, string>> = {
  "no-certificate": "none given",
  "unknown-issuer": "not issued by the broker's client CA",
  expired: "it has expired",
  "not-yet-valid": "it is not valid yet",
  "not-for-clients": "it is not a client certificate (extended key usage without clientAuth)",
  invalid: "it does not verify",
};

const REFUSAL_HINT: Readonly<Record<CertificateRefusal, string>> = {
  "no-certificate": "give the client its certificate (--cert-file and --key-file); docs/mtls.md",
  "unknown-issuer":
    "issue the client's certificate with the CA given to the broker as --client-ca (docs/mtls.md), or this is someone else's",
  expired: "issue the client a new certificate (docs/mtls.md, rotation)",
  "not-yet-valid": "check this machine's clock and the client's certificate dates",
  "not-for-clients": "issue it with extendedKeyUsage = clientAuth (docs/mtls.md)",
  invalid: "check the certificate against the CA with openssl verify -CAfile (docs/mtls.md)",
};

/** OpenSSL's verification errors, as Node names them, by what the operator does about them. */
function refusalOf(code: string): CertificateRefusal {
  if (code === "CERT_HAS_EXPIRED") return "expired";
  if (code === "CERT_NOT_YET_VALID") return "not-yet-valid";
  if (code === "INVALID_PURPOSE") return "not-for-clients";
  if (/ISSUER|SELF_SIGNED|LEAF_SIGNATURE|UNTRUSTED|SIGNATURE_FAILURE/.test(code)) return "unknown-issuer";
  return "invalid";
}

/** A certificate login, or why not (CONNACK 5, not authorised). */
export type CertificateLogin =
  | { readonly ok: true; readonly principal: Exclude<Principal, { role: "open" }> }
  | { readonly ok: false; readonly reason: string; readonly hint: string };

/**
 * Who a verified certificate logs in as. The certificate is the identity: a password sent with it is
 * not checked (the gateway's service always names its password file, empty with a certificate), and a
 * username sent with it must be the certificate's own.
 */
export function certificateLogin(
  name: string | null,
  users: ReadonlyMap<string, BrokerUser>,
  username: string | undefined,
): CertificateLogin {
  if (name === null)
    return {
      ok: false,
      reason: "the client certificate's subject has no single CN",
      hint: 'issue it with one CN, the user\'s name in the users file (-subj "/CN=gw-elm"; docs/mtls.md)',
    };
  const user = users.get(name);
  if (!user)
    return {
      ok: false,
      reason: `the client certificate's CN "${name}" is no user of the users file`,
      hint: `add a user named ${name} to the users file (a certificate's CN is its username), or this certificate is not for this broker`,
    };
  if (username !== undefined && username !== name)
    return {
      ok: false,
      reason: `the user name "${username}" is not the client certificate's CN "${name}"`,
      hint: "a client with a certificate logs in as its CN: leave --username out or give the CN",
    };
  return { ok: true, principal: user.principal };
}

/** `CN=gw-elm, O=City of Example` from Node's subject object (a repeated attribute is an array). */
function distinguishedName(name: PeerCertificate["subject"] | undefined): string {
  if (!name) return "";
  return Object.entries(name as unknown as Record<string, string | string[]>)
    .flatMap(([key, value]) => (Array.isArray(value) ? value : [value]).map((v) => `${key}=${v}`))
    .join(", ");
}
