import KlingCore
import Testing

@Suite("Wake signal", .timeLimit(.minutes(1)))
struct WakeSignalTests {
    @Test func waitsEndByTimeoutOrNotificationUnderContention() async {
        let signal = WakeSignal()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<300 {
                        await signal.wait(since: signal.current, timeout: .milliseconds(1))
                    }
                }
            }
            group.addTask {
                for _ in 0..<2000 {
                    signal.notify()
                    await Task.yield()
                }
            }
        }
    }

    @Test func notificationAfterTheReadWakesAtOnce() async {
        let signal = WakeSignal()
        let seen = signal.current
        signal.notify()
        await signal.wait(since: seen, timeout: .seconds(30))
    }
}
