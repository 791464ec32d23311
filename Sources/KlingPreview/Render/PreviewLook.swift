/// A shot's deterministic look, seeded from its prompt: background and accent colours and motion speeds.
struct PreviewLook: Sendable, Hashable {
    var background: String
    var accent: String
    var speedX: Int
    var speedY: Int

    init(prompt: String) {
        let hash = Self.fnv1a(prompt)
        func colour(_ shift: UInt64, dark: Bool) -> String {
            let r = Int((hash >> shift) & 0xff), g = Int((hash >> (shift + 8)) & 0xff), b = Int((hash >> (shift + 16)) & 0xff)
            let scale = dark ? 0.55 : 1.0
            let floor = dark ? 20 : 110
            func channel(_ value: Int) -> Int { floor + Int(Double(value) * scale) * (255 - floor) / 255 }
            let hex = [channel(r), channel(g), channel(b)].map { value -> String in
                let text = String(min(255, value), radix: 16)
                return text.count == 1 ? "0" + text : text
            }.joined()
            return "0x" + hex
        }
        background = colour(0, dark: true)
        accent = colour(24, dark: false)
        speedX = 60 + Int((hash >> 48) % 240)
        speedY = 40 + Int((hash >> 56) % 160)
    }

    /// FNV-1a 64-bit: stable across processes and platforms (unlike `Hasher`).
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}
