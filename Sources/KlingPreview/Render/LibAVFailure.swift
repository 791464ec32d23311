import CFFmpeg

/// A failed call into FFmpeg's libraries, with the library's reason.
struct LibAVFailure: Error, CustomStringConvertible {
    var description: String

    /// Throws when `status` is an FFmpeg error code, saying what was being done.
    static func check(_ status: Int32, _ what: String) throws(LibAVFailure) {
        guard status < 0 else { return }
        var buffer = [CChar](repeating: 0, count: 256)
        av_strerror(status, &buffer, buffer.count)
        let reason = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw LibAVFailure(description: "\(what): \(reason)")
    }

    /// Silences the libraries' logging to standard error (once): failures are reported through thrown errors instead.
    static let quietLibraries: Void = av_log_set_level(AV_LOG_QUIET)
}
