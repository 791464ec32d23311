import Foundation
import KlingAPI

/// Reading providers' answers: envelopes, errors and task objects of each dialect.
enum WireAnswer {
    /// The `data` of a successful envelope, or the provider's error.
    static func data(status: Int, body: Data, headers: [(String, String)], dialect: KlingClient.Dialect) throws(KlingError) -> JSONValue {
        let requestHeader = headers.first { $0.0.lowercased() == "x-request-id" }?.1
        guard let json = JSONValue.parse(body), case .object(let object) = json else {
            if (200..<300).contains(status) {
                throw KlingError(.transport, message: "the provider answered HTTP \(status) with a body that is not a JSON object", httpStatus: status)
            }
            let text = String(decoding: body.prefix(300), as: UTF8.self)
            throw KlingError(
                kindFor(status: status), message: text.isEmpty ? "HTTP \(status)" : text, code: String(status), httpStatus: status,
                requestID: requestHeader)
        }
        let code = object["code"].flatMap(codeText)
        let message = object["msg"]?.stringValue ?? object["message"]?.stringValue ?? ""
        let requestID = object["request_id"]?.stringValue ?? requestHeader
        let okCode = dialect == .klingOfficial ? (code == nil || code == "0") : (code == nil || code == "200")
        if (200..<300).contains(status) && okCode && object["success"] != .bool(false) {
            return object["data"] ?? .null
        }
        let kind = kindFor(status: status, code: code)
        var issues: [ValidationIssue] = []
        if kind == .validation { issues = parseIssues(message) }
        throw KlingError(
            kind, message: message.isEmpty ? "HTTP \(status)" : message, code: code ?? String(status), httpStatus: status,
            requestID: requestID, issues: issues)
    }

    static func kindFor(status: Int, code: String? = nil) -> KlingError.Kind {
        if status == 400 || status == 422 || code == "422" || code == "1201" || code == "1200" { return .validation }
        return .api
    }

    static func codeText(_ value: JSONValue) -> String? {
        switch value {
        case .number(let number): number.rounded() == number ? String(Int64(number)) : String(number)
        case .string(let text): text
        default: nil
        }
    }

    /// `field: message; field: message` → issues (the servers' validation summary format).
    static func parseIssues(_ message: String) -> [ValidationIssue] {
        message.components(separatedBy: "; ").compactMap { part in
            guard let colon = part.range(of: ": ") else { return nil }
            return ValidationIssue(field: String(part[..<colon.lowerBound]), message: String(part[colon.upperBound...]))
        }
    }

    /// A task object of `dialect` (Market recordInfo `data`, CRUN TaskInfo `data`, Kling task `data`).
    static func task(_ data: JSONValue, dialect: KlingClient.Dialect) throws(KlingError) -> KlingTask {
        guard case .object(let object) = data else { throw KlingError(.transport, message: "the task answer has no data object") }
        func string(_ key: String) -> String? { object[key]?.stringValue }
        func int(_ key: String) -> Int? { object[key].flatMap(codeText).flatMap { Int($0) ?? Double($0).map { Int($0) } } }
        switch dialect {
        case .market:
            guard let id = string("taskId") else { throw KlingError(.transport, message: "the task answer has no taskId") }
            let word = string("state") ?? ""
            var urls: [String] = []
            var cover: String?
            if let text = string("resultJson"), case .object(let result)? = JSONValue.parse(Data(text.utf8)) {
                urls = result["resultUrls"]?.stringArray ?? []
                cover = result["coverUrl"]?.stringValue
            }
            let state = marketState(word)
            let failure = state == .failed ? KlingTask.Failure(code: string("failCode").flatMap { $0.isEmpty ? nil : $0 }, message: string("failMsg") ?? "") : nil
            return KlingTask(
                id: id, state: state, providerState: word, progress: int("progress"), videoURLs: urls, coverURL: cover, failure: failure,
                engine: string("engine"), credits: int("consumeCredits"))
        case .crun:
            guard let id = string("task_id") else { throw KlingError(.transport, message: "the task answer has no task_id") }
            let word = string("status") ?? ""
            var urls: [String] = []
            var cover: String?
            var failure: KlingTask.Failure?
            let state = crunState(word)
            if case .object(let result)? = object["result"] {
                urls = result["media_urls"]?.stringArray ?? []
                cover = result["cover_url"]?.stringValue
                if state == .failed {
                    failure = KlingTask.Failure(code: result["code"].flatMap(codeText), message: result["message"]?.stringValue ?? "")
                }
            }
            if state == .failed && failure == nil { failure = KlingTask.Failure(code: nil, message: "") }
            return KlingTask(
                id: id, state: state, providerState: word, progress: int("progress"), videoURLs: urls, coverURL: cover, failure: failure,
                engine: string("engine"), credits: int("credits"))
        case .klingOfficial:
            guard let id = string("task_id") else { throw KlingError(.transport, message: "the task answer has no task_id") }
            let word = string("task_status") ?? ""
            var urls: [String] = []
            if case .object(let result)? = object["task_result"], case .array(let videos)? = result["videos"] {
                urls = videos.compactMap { if case .object(let video) = $0 { video["url"]?.stringValue } else { nil } }
            }
            let state = klingState(word)
            return KlingTask(
                id: id, state: state, providerState: word, progress: int("progress"), videoURLs: urls,
                failure: state == .failed ? KlingTask.Failure(code: nil, message: string("task_status_msg") ?? "") : nil,
                engine: string("engine"), credits: int("final_unit_deduction"))
        }
    }

    static func marketState(_ word: String) -> KlingTask.State {
        switch word {
        case "generating": .running
        case "success": .succeeded
        case "fail": .failed
        default: .queued
        }
    }

    static func crunState(_ word: String) -> KlingTask.State {
        switch word {
        case "running": .running
        case "success": .succeeded
        case "failed": .failed
        default: .queued
        }
    }

    static func klingState(_ word: String) -> KlingTask.State {
        switch word {
        case "processing": .running
        case "succeed": .succeeded
        case "failed": .failed
        default: .queued
        }
    }
}

extension JSONValue {
    var stringValue: String? { if case .string(let text) = self { text } else { nil } }
    var stringArray: [String]? {
        guard case .array(let items) = self else { return nil }
        return items.compactMap(\.stringValue)
    }
    subscript(key: String) -> JSONValue? { if case .object(let object) = self { object[key] } else { nil } }
}
