import Foundation
import KlingAPI
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A swift-log handler writing one JSON object per line to standard error:
/// `{"time","level","label","message","metadata"}` (metadata includes `request_id` on request logs and `task_id` on
/// task, worker and callback logs).
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    private let label: String
    private let output: LineWriter

    /// A handler for `label` writing to standard error.
    public static func standardError(label: String) -> JSONLogHandler {
        JSONLogHandler(label: label, output: .standardError)
    }

    init(label: String, output: LineWriter) {
        self.label = label
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        if let error = event.error { merged["error"] = merged["error"] ?? .string("\(error)") }
        let line = Line(
            time: Date.now.formatted(Self.timeStyle), level: event.level.rawValue, label: label, message: event.message.description,
            metadata: JSONValue.object(merged.mapValues(Self.json)))
        output.write(line)
    }

    private static let timeStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    /// One log line.
    struct Line: Encodable {
        var time: String
        var level: String
        var label: String
        var message: String
        var metadata: JSONValue
    }

    static func json(_ value: Logger.MetadataValue) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .stringConvertible(let value): .string(value.description)
        case .array(let values): .array(values.map(json))
        case .dictionary(let values): .object(values.mapValues(json))
        }
    }

    /// Serialises lines and writes each whole, so lines from different threads never interleave.
    final class LineWriter: Sendable {
        private let descriptor: Int32
        private let lock = Mutex(())

        init(descriptor: Int32) { self.descriptor = descriptor }

        static let standardError = LineWriter(descriptor: 2)

        func write(_ line: Line) {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            guard var bytes = try? encoder.encode(line) else { return }
            bytes.append(UInt8(ascii: "\n"))
            lock.withLock { _ in
                bytes.withUnsafeBytes { buffer in
                    var offset = 0
                    while offset < buffer.count {
                        let written = systemWrite(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                        if written > 0 {
                            offset += written
                        } else if written < 0 && errno == EINTR {
                            continue
                        } else {
                            return
                        }
                    }
                }
            }
        }
    }
}

/// write(2).
private func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(descriptor, bytes, count)
    #else
    Darwin.write(descriptor, bytes, count)
    #endif
}

/// How `kling-server serve` writes its logs.
public enum LogFormat: String, Sendable, CaseIterable {
    /// One JSON object per line (``JSONLogHandler``).
    case json
    /// swift-log's human-readable lines.
    case text

    /// `json` when standard error is not a terminal (a service manager, a container, a file), `text` otherwise.
    public static var automatic: LogFormat { isatty(2) == 0 ? .json : .text }

    /// Installs this format as the process's logging backend (once per process).
    public func bootstrap() {
        switch self {
        case .json: LoggingSystem.bootstrap { JSONLogHandler.standardError(label: $0) }
        case .text: LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        }
    }
}
