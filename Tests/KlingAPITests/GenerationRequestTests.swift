import Foundation
import KlingAPI
import Testing

@Suite("Canonical request validation")
struct GenerationRequestTests {
    func decodeMarket(_ json: String) -> Result<DecodedCreateRequest, CreateRequestRejection> {
        MarketCreateRequest.decode(Data(json.utf8))
    }

    func decodeCRUN(_ json: String) -> Result<DecodedCreateRequest, CreateRequestRejection> {
        CRUNCreateRequest.decode(Data(json.utf8))
    }

    @Test func findsElementReferencesButNotEmailAddresses() {
        #expect(GenerationRequest.elementReferences(in: "a dog @element_dog meets @cat, mail me at a@b.com") == ["element_dog", "cat"])
        #expect(GenerationRequest.elementReferences(in: "@x- and @x") == ["x"])
        #expect(GenerationRequest.elementReferences(in: "no refs @ here") == [])
    }

    @Test func singleShotNormalizesShotTypeToNullAndAudioToFalse() throws {
        let decoded = try decodeCRUN(
            #"{"model":"kling/v3","input":{"prompt":"p","multi_shots":false,"shot_type":"intelligence","multi_prompt":[{"prompt":"x","duration":5}]}}"#
        ).get()
        #expect(decoded.request.shotType == nil)
        #expect(decoded.request.shots.isEmpty)
        #expect(decoded.request.audio == false)
        #expect(decoded.request.duration == 5)
        #expect(decoded.request.mode == .pro)
    }

    @Test func crunMultiShotForcesAudioOnSilently() throws {
        let decoded = try decodeCRUN(
            #"{"model":"kling/v3","input":{"multi_shots":true,"audio":false,"img_urls":["https://x.test/a.png"],"duration":5,"multi_prompt":[{"prompt":"a","duration":2},{"prompt":"b","duration":3}]}}"#
        ).get()
        #expect(decoded.request.audio == true)
        #expect(decoded.request.shotType == .customize)
        #expect(decoded.request.shots.count == 2)
    }

    @Test func marketMultiShotRejectsExplicitSoundFalse() {
        let result = decodeMarket(
            #"{"model":"kling-3.0/video","input":{"multi_shots":true,"sound":false,"image_urls":["https://x.test/a.png"],"duration":"5","multi_prompt":[{"prompt":"a","duration":5}]}}"#
        )
        guard case .failure(.invalid(let issues)) = result else {
            Issue.record("expected a rejection, got \(result)")
            return
        }
        #expect(issues.map(\.field) == ["input.sound"])
        #expect(issues[0].message.contains("must be true"))
    }

    @Test func reportsEveryProblemAtOnce() {
        let result = decodeMarket(#"{"model":"kling-3.0","input":{"duration":"40","mode":"ultra","aspect_ratio":"4:3"}}"#)
        guard case .failure(.invalid(let issues)) = result else {
            Issue.record("expected a rejection")
            return
        }
        #expect(Set(issues.map(\.field)) == ["input.prompt", "input.duration", "input.mode", "input.aspect_ratio"])
    }

    @Test func marketAcceptsDurationAsStringOrNumberAndBothModelNames() throws {
        let a = try decodeMarket(#"{"model":"kling-3.0/video","input":{"prompt":"p","duration":"7"}}"#).get()
        let b = try decodeMarket(#"{"model":"kling-3.0","input":{"prompt":"p","duration":7,"mode":"4K"}}"#).get()
        #expect(a.request.duration == 7 && b.request.duration == 7)
        #expect(b.request.mode == .fourK)
        #expect(a.request.aspectRatio == nil)
    }

    @Test func intelligenceKeepsThePromptAndNeedsNoShots() throws {
        let decoded = try decodeCRUN(
            #"{"model":"kling/v3","input":{"multi_shots":true,"shot_type":"intelligence","prompt":"A. B. C.","img_urls":["https://x.test/a.jpg"],"duration":9}}"#
        ).get()
        #expect(decoded.request.shotType == .intelligence)
        #expect(decoded.request.prompt == "A. B. C.")
    }

    @Test func keepsTheOriginalBodyAsParams() throws {
        let decoded = try decodeMarket(#"{"model":"kling-3.0/video","extra":1,"input":{"prompt":"p"}}"#).get()
        #expect(decoded.params.jsonString() == #"{"extra":1,"input":{"prompt":"p"},"model":"kling-3.0/video"}"#)
    }
}

@Suite("Kling camera_control")
struct KlingCameraControlTests {
    @Test(arguments: [
        (#"{"type":"simple","config":{"zoom":5}}"#, GenerationRequest.CameraMotion.pushIn),
        (#"{"type":"simple","config":{"zoom":-3}}"#, .pullBack),
        (#"{"type":"simple","config":{"pan":2}}"#, .panRight),
        (#"{"type":"simple","config":{"horizontal":-2}}"#, .panLeft),
        (#"{"type":"simple","config":{"tilt":4}}"#, .tiltUp),
        (#"{"type":"simple","config":{"vertical":-4}}"#, .tiltDown),
        (#"{"type":"simple","config":{"roll":1}}"#, .orbit),
        (#"{"type":"down_back"}"#, .pullBack),
        (#"{"type":"forward_up"}"#, .pushIn),
        (#"{"type":"left_turn_forward"}"#, .orbit),
    ])
    func cameraControlBecomesACameraMotion(_ control: String, _ motion: GenerationRequest.CameraMotion) throws {
        let body = #"{"prompt":"a card","camera_control":\#(control)}"#
        let decoded = try KlingOfficialCreateRequest.decode(Data(body.utf8), kind: .textToVideo).get()
        #expect(decoded.request.request.cameraMotion == motion)
    }
}
