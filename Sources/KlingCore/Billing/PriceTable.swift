import KlingAPI

/// What a request costs: credits per output second by mode, times a factor when the video has audio.
///
/// Defaults (documented in the README): std 10, pro 14, 4K 28 credits per second; audio x1.5. A 5 s pro video with
/// audio costs 105 credits.
public struct PriceTable: Sendable, Hashable, Codable {
    public var stdPerSecond: Int64 = 10
    public var proPerSecond: Int64 = 14
    public var fourKPerSecond: Int64 = 28
    /// Multiplier applied when the output has an audio track (multi-shot always does).
    public var audioFactor: Double = 1.5

    public init() {}

    /// Credits per output second for a mode.
    public func perSecond(_ mode: GenerationRequest.Mode) -> Int64 {
        switch mode {
        case .std: stdPerSecond
        case .pro: proPerSecond
        case .fourK: fourKPerSecond
        }
    }

    /// The price of a validated, normalized request, rounded up to whole credits.
    public func quote(_ request: GenerationRequest) -> PriceQuote {
        let base = Int64(request.duration) * perSecond(request.mode)
        let factor = request.hasAudio ? audioFactor : 1
        let credits = Int64((Double(base) * factor).rounded(.up))
        return PriceQuote(
            credits: credits, seconds: request.duration, mode: request.mode, perSecond: perSecond(request.mode), audio: request.hasAudio,
            audioFactor: factor)
    }
}

/// A priced request with the figures the price came from.
public struct PriceQuote: Sendable, Hashable, Codable {
    public var credits: Int64
    public var seconds: Int
    public var mode: GenerationRequest.Mode
    public var perSecond: Int64
    public var audio: Bool
    /// The factor applied (1 without audio).
    public var audioFactor: Double
}
