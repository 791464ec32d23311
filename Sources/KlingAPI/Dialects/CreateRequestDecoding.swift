import Foundation

/// A create body decoded into the canonical request, with the caller's original parameters kept for echoing back.
public struct DecodedCreateRequest: Sendable, Hashable {
    /// The validated, normalized canonical request.
    public var request: GenerationRequest
    /// The model name as the caller sent it.
    public var model: String
    /// The original body, kept so task details can return it (`param`).
    public var params: JSONValue
}

/// Why a create body was refused before any task existed.
public enum CreateRequestRejection: Error, Sendable, Hashable {
    /// The body is not JSON, or its top level is not an object.
    case malformed(String)
    /// One or more fields are missing, mistyped or break a rule.
    case invalid([ValidationIssue])

    /// One message naming every offending field.
    public var message: String {
        switch self {
        case .malformed(let message): message
        case .invalid(let issues): issues.summary
        }
    }
}

enum CreateRequestDecoding {
    /// Parses the body as a JSON object, or says why it is not one.
    static func topLevelObject(_ body: Data) -> Result<[String: JSONValue], CreateRequestRejection> {
        guard !body.isEmpty else { return .failure(.malformed("body: request body is empty; send a JSON object")) }
        guard let value = JSONValue.parse(body) else { return .failure(.malformed("body: request body is not valid JSON")) }
        guard case .object(let object) = value else {
            return .failure(.malformed("body: request body must be a JSON object, not \(value.typeName)"))
        }
        return .success(object)
    }

    /// What every dialect's create body starts with: the top-level object, its model, callback and `input` object.
    struct Envelope {
        var object: [String: JSONValue]
        var top: FieldReader
        var input: FieldReader
        var model: String?
        var request: GenerationRequest
    }

    /// Reads the parts every create body shares; fails when the body or its `input` object is unusable.
    static func envelope(
        _ body: Data, acceptedModels: Set<String>, modelHint: String, callbackKey: String
    ) -> Result<Envelope, CreateRequestRejection> {
        let object: [String: JSONValue]
        switch topLevelObject(body) {
        case .success(let value): object = value
        case .failure(let rejection): return .failure(rejection)
        }
        var top = FieldReader(object: object)
        let model = top.string("model", required: true)
        if let model, !acceptedModels.contains(model) {
            top.fail("model", "must be \(modelHint) (got \"\(model)\")")
        }
        var request = GenerationRequest()
        let callback = top.string(callbackKey)
        request.callbackURL = callback?.isEmpty == true ? nil : callback
        guard let input = top.object("input", required: true) else { return .failure(.invalid(top.issues)) }
        return .success(Envelope(object: object, top: top, input: input, model: model, request: request))
    }

    static func mode(_ text: String?, field: String, reader: inout FieldReader, key: String) -> GenerationRequest.Mode? {
        guard let text else { return nil }
        switch text {
        case "std": return .std
        case "pro": return .pro
        case "4k", "4K": return .fourK
        default:
            reader.fail(key, "must be one of std, pro, 4K (got \"\(text)\")")
            return nil
        }
    }

    static func aspect(_ text: String?, reader: inout FieldReader, key: String) -> GenerationRequest.AspectRatio? {
        guard let text, !text.isEmpty else { return nil }
        guard let value = GenerationRequest.AspectRatio(rawValue: text) else {
            reader.fail(key, "must be one of 16:9, 9:16, 1:1 (got \"\(text)\")")
            return nil
        }
        return value
    }

    /// Reads `[{prompt, duration}]` shots.
    static func shots(_ reader: inout FieldReader, key: String) -> [GenerationRequest.Shot] {
        guard let items = reader.objects(key) else { return [] }
        var shots: [GenerationRequest.Shot] = []
        for var item in items {
            let prompt = item.string("prompt", required: true)
            let duration = item.integer("duration", required: true)
            reader.append(item.issues)
            shots.append(GenerationRequest.Shot(prompt: prompt ?? "", duration: duration ?? 0))
        }
        return shots
    }

    /// Validates and normalizes the request read from `envelope`, or collects every issue (wire issues first).
    static func finish(
        _ envelope: Envelope, request: GenerationRequest, input: FieldReader, rules: ValidationRules
    ) -> Result<DecodedCreateRequest, CreateRequestRejection> {
        let wireIssues = envelope.top.issues + input.issues
        let model = envelope.model ?? ""
        let params = JSONValue.object(envelope.object)
        var issues = wireIssues
        let wireFields = Set(wireIssues.map(\.field))
        for issue in request.validate(rules: rules) where !wireFields.contains(issue.field) {
            issues.append(issue)
        }
        guard issues.isEmpty else { return .failure(.invalid(issues)) }
        return .success(DecodedCreateRequest(request: request.normalized(), model: model, params: params))
    }
}
