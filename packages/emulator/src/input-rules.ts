import {
  ENDPOINTS,
  brokenRules,
  effectiveParams,
  findEndpoint,
  type ClipDuration,
  type ClipResolution,
  type EndpointRecord,
} from "@hailuo/endpoints";

/** An endpoint's input once valid: the body as fal's app reads it, with what it renders. */
export interface EmulatedInput {
  prompt: string;
  duration: ClipDuration;
  prompt_optimizer: boolean;
  resolution?: ClipResolution;
  image_url?: string;
  end_image_url?: string;
}

/** One input problem, in fal's (pydantic's) shape. */
export interface InputProblem {
  loc: string[];
  msg: string;
  type: string;
  ctx?: Record<string, unknown>;
}

/** Every endpoint id the emulator serves: one per record. */
export const EMULATED_ENDPOINTS: readonly string[] = ENDPOINTS.map((e) => e.id);

const URL_LIKE = /^(https?:\/\/\S+|data:image\/[a-z]+;base64,\S+)$/i;

/**
 * fal's app-side validation, from the endpoint's record (pydantic's messages and types, as fal
 * answers them: fal-protocol.md §14). Fields the record does not list are ignored, as pydantic
 * models do by default; the body keeps the record's fields in its order, defaults filled in, so
 * its hash is the one `inputHash(normalizeInput(...))` gives on the client side.
 */
export function validateRecordInput(
  record: EndpointRecord,
  body: unknown,
): { problems: InputProblem[]; input?: EmulatedInput; body?: Record<string, unknown> } {
  if (!body || typeof body !== "object" || Array.isArray(body))
    return { problems: [{ loc: ["body"], msg: "Input should be an object", type: "model_type" }] };
  const b = body as Record<string, unknown>;
  const problems: InputProblem[] = [];
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(record.fields)) {
    const loc = ["body", name];
    const v = b[name];
    if (spec.type === "prompt") {
      if (typeof v !== "string") problems.push({ loc, msg: "Field required", type: "missing" });
      else if (v.trim().length === 0)
        problems.push({
          loc,
          msg: "String should have at least 1 character",
          type: "string_too_short",
        });
      else if ([...v].length > spec.maxChars)
        problems.push({
          loc,
          msg: `String should have at most ${spec.maxChars} characters`,
          type: "string_too_long",
        });
      out[name] = v;
    } else if (spec.type === "enum") {
      const value = v ?? spec.default;
      if (typeof value !== "string" || !spec.values.includes(value))
        problems.push({
          loc,
          msg: `Input should be ${spec.values.map((x) => `'${x}'`).join(" or ")}`,
          type: "enum",
        });
      out[name] = value;
    } else if (spec.type === "boolean") {
      const value = v ?? spec.default;
      if (typeof value !== "boolean")
        problems.push({ loc, msg: "Input should be a valid boolean", type: "bool_type" });
      out[name] = value;
    } else if (v === undefined) {
      if (spec.required) problems.push({ loc, msg: "Field required", type: "missing" });
    } else if (typeof v !== "string" || !URL_LIKE.test(v)) {
      problems.push({ loc, msg: "Input should be a valid URL", type: "url_parsing" });
    } else out[name] = v;
  }
  if (problems.length) return { problems };
  const params = effectiveParams(record, out);
  for (const rule of brokenRules(record, params))
    problems.push({ loc: ["body", rule.field], msg: rule.message, type: "value_error" });
  if (problems.length) return { problems };
  const input: EmulatedInput = {
    ...(out as unknown as EmulatedInput),
    duration: params.duration,
    resolution: params.resolution,
  };
  return { problems, input, body: out };
}

/** `validateRecordInput` by endpoint id; an id no record describes has no input rules at all. */
export function validateInput(
  body: unknown,
  endpointId: string = ENDPOINTS[0]!.id,
): { problems: InputProblem[]; input?: EmulatedInput; body?: Record<string, unknown> } {
  const record = findEndpoint(endpointId);
  if (!record)
    return {
      problems: [{ loc: ["path"], msg: `Unknown endpoint ${endpointId}`, type: "missing" }],
    };
  return validateRecordInput(record, body);
}
