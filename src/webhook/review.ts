// AdmissionReview in, AdmissionReview out (admission.k8s.io/v1 and v1beta1 have the same fields here).
// Anything that is not a Pod CREATE is allowed unchanged.

import { isObject, leftAlone, mutatePod, type InjectionLayout, type Json, type PodMutation, type SelectionMode } from './inject.js';

export const REVIEW_VERSIONS = ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'] as const;

/** A request the webhook cannot answer (HTTP 400); the message is one line for the caller. */
export class BadReview extends Error {
  override name = 'BadReview';
}

export interface ReviewContext {
  layout: InjectionLayout;
  mode: SelectionMode;
  /** Namespaces never injected into, whatever the configuration sends: the webhook's own first. */
  excludedNamespaces: ReadonlySet<string>;
}

export interface ReviewResult {
  /** The AdmissionReview to send back. */
  response: Record<string, unknown>;
  /** What was decided, for the log; undefined for requests that are not a Pod CREATE. */
  pod?: { namespace: string; name: string; mutation: PodMutation };
}

function podName(object: Json): string {
  const metadata = isObject(object.metadata) ? object.metadata : {};
  if (typeof metadata.name === 'string' && metadata.name !== '') return metadata.name;
  // Pods of a ReplicaSet or Job have only their generateName prefix at admission.
  return typeof metadata.generateName === 'string' ? `${metadata.generateName}*` : '';
}

export function answerReview(review: unknown, context: ReviewContext): ReviewResult {
  if (!isObject(review)) throw new BadReview('the body is not a JSON object');
  const { apiVersion, kind, request } = review;
  if (!REVIEW_VERSIONS.includes(apiVersion as (typeof REVIEW_VERSIONS)[number])) {
    throw new BadReview(`unsupported apiVersion ${JSON.stringify(apiVersion)}; expected ${REVIEW_VERSIONS.join(' or ')}`);
  }
  if (kind !== 'AdmissionReview') throw new BadReview(`kind is ${JSON.stringify(kind)}, not "AdmissionReview"`);
  if (!isObject(request)) throw new BadReview('request is missing');
  if (typeof request.uid !== 'string' || request.uid === '') throw new BadReview('request.uid is missing');

  const answer = (fields: Json = {}): Json => ({ apiVersion, kind, response: { uid: request.uid, allowed: true, ...fields } });
  const requestKind = isObject(request.kind) ? request.kind : {};
  const isPodCreate = requestKind.group === '' && requestKind.kind === 'Pod' && request.operation === 'CREATE' && !request.subResource;
  if (!isPodCreate) return { response: answer() };
  if (!isObject(request.object)) throw new BadReview('request.object is missing from a Pod CREATE');

  const object = request.object;
  const metadataNamespace = isObject(object.metadata) ? object.metadata.namespace : undefined;
  const givenNamespace = request.namespace ?? metadataNamespace;
  const namespace = typeof givenNamespace === 'string' ? givenNamespace : '';
  const name = podName(object);
  const mutation = context.excludedNamespaces.has(namespace)
    ? leftAlone(`namespace ${namespace} is excluded (the webhook's own, or --exclude-namespace)`)
    : mutatePod(object, context.layout, context.mode);
  const fields: Json = {};
  if (mutation.patch.length > 0) {
    fields.patchType = 'JSONPatch';
    fields.patch = Buffer.from(JSON.stringify(mutation.patch)).toString('base64');
  }
  if (mutation.warnings.length > 0) fields.warnings = mutation.warnings;
  return { response: answer(fields), pod: { namespace, name, mutation } };
}
