/// A shot's deterministic look, seeded from its prompt: colours and shape motion.
///
/// Neighbouring shots alternate between a dark and a light background, so every cut is a strong change in brightness
/// even when two prompts happen to hash to similar hues.
struct PreviewLook: Sendable, Hashable {
    /// Background colour, `0xRRGGBB`.
    var background: String
    /// Colour of the moving shapes, `0xRRGGBB`.
    var accent: String
    /// Shape speeds in pixels per second at 1280x720 (scaled to the frame size).
    var speedX: Int
    var speedY: Int

    init(prompt: String, index: Int) {
        let hash = StableHash.fnv1a(prompt)
        let hue = Double(hash % 360)
        let light = index % 2 == 1
        background = Self.hex(hue: hue, saturation: 0.55, value: light ? 0.82 : 0.30)
        accent = Self.hex(hue: (hue + 150).truncatingRemainder(dividingBy: 360), saturation: 0.7, value: light ? 0.35 : 0.95)
        speedX = 60 + Int((hash >> 16) % 240)
        speedY = 40 + Int((hash >> 32) % 160)
    }

    /// `colour` at `opacity` over `background` (both `0xRRGGBB`), as `0xRRGGBB`.
    static func blend(_ colour: String, over background: String, opacity: Double) -> String {
        func channels(_ hex: String) -> [Double] {
            let value = UInt32(hex.dropFirst(2), radix: 16) ?? 0
            return [Double(value >> 16 & 0xFF), Double(value >> 8 & 0xFF), Double(value & 0xFF)]
        }
        return "0x"
            + zip(channels(colour), channels(background)).map { top, bottom in
                let byte = max(0, min(255, Int((top * opacity + bottom * (1 - opacity)).rounded())))
                let text = String(byte, radix: 16)
                return text.count == 1 ? "0" + text : text
            }.joined()
    }

    /// An HSV colour as ffmpeg's `0xRRGGBB`.
    static func hex(hue: Double, saturation: Double, value: Double) -> String {
        let chroma = value * saturation
        let sector = hue / 60
        let x = chroma * (1 - abs(sector.truncatingRemainder(dividingBy: 2) - 1))
        let (r, g, b): (Double, Double, Double) =
            switch Int(sector) {
            case 0: (chroma, x, 0)
            case 1: (x, chroma, 0)
            case 2: (0, chroma, x)
            case 3: (0, x, chroma)
            case 4: (x, 0, chroma)
            default: (chroma, 0, x)
            }
        let m = value - chroma
        return "0x"
            + [r, g, b].map { channel in
                let byte = max(0, min(255, Int(((channel + m) * 255).rounded())))
                let text = String(byte, radix: 16)
                return text.count == 1 ? "0" + text : text
            }.joined()
    }
}
