import Foundation

/// Installation-wide settings rows: the operator's switches (``ServiceSwitches``) and the installation's secrets.
/// A store keeps rows; what the rows mean is decided here, once, for every store.
public protocol SwitchStore: Sendable {
    /// Maintenance mode and feature switches as stored now.
    func switches() async throws -> ServiceSwitches
    /// Stores a settings row, replacing its value.
    func storeSetting(key: String, value: String) async throws
    /// The value of a settings row, first stored as `value` when there is none (one winner across processes).
    func setting(key: String, insertingIfAbsent value: String) async throws -> String
}

extension SwitchStore {
    public func setMaintenance(_ on: Bool) async throws {
        let row = ServiceSwitches.setting(maintenance: on)
        try await storeSetting(key: row.key, value: row.value)
    }

    public func setFeature(_ feature: ServiceSwitches.Feature, enabled: Bool) async throws {
        let row = ServiceSwitches.setting(feature, enabled: enabled)
        try await storeSetting(key: row.key, value: row.value)
    }

    /// A random secret of this installation (made on first use, then the same for every process), e.g. the key that
    /// signs file links.
    public func installationSecret(_ name: String) async throws -> String {
        var generator = SystemRandomNumberGenerator()
        let fresh = Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }).base64EncodedString()
        return try await setting(key: ServiceSwitches.secretSetting(name), insertingIfAbsent: fresh)
    }
}
