/// What a request would cost, from KlingKit's `POST /api/v1/jobs/quote` (nothing is charged or stored).
public struct Quote: Sendable, Hashable {
    /// The price in credits.
    public var credits: Int
    /// The account's balance now.
    public var balance: Int
    /// Whether the balance covers the price.
    public var affordable: Bool
    /// Seconds of output priced.
    public var seconds: Int
    /// The mode priced (`std`, `pro`, `4K`).
    public var mode: String
    /// Credits per output second of that mode.
    public var creditsPerSecond: Int
    /// Whether the audio factor applies.
    public var audio: Bool
}
