import Foundation
import Testing

/// One bad request and the field its 422 must name.
struct BadRequest: Sendable, CustomTestStringConvertible {
    let dialect: TestDialect
    let name: String
    let body: String
    let field: String

    var testDescription: String { "\(dialect.rawValue): \(name)" }
}

private let longText = String(repeating: "a", count: 2501)
private let shot501 = String(repeating: "b", count: 501)
private func market(_ input: String, model: String = #""model":"kling-3.0/video","#) -> String { "{\(model)\"input\":{\(input)}}" }
private func crun(_ input: String, model: String = #""model":"kling/v3","#) -> String { "{\(model)\"input\":{\(input)}}" }
private let img = #""https://img.example.com/a.png""#

let badRequests: [BadRequest] = [
    // Market (seed 004)
    .init(dialect: .market, name: "malformed JSON", body: "{\"model\":", field: "body"),
    .init(dialect: .market, name: "top level is an array", body: "[]", field: "body"),
    .init(dialect: .market, name: "unknown model", body: market(#""prompt":"p""#, model: #""model":"sora","#), field: "model"),
    .init(dialect: .market, name: "missing model", body: market(#""prompt":"p""#, model: ""), field: "model"),
    .init(dialect: .market, name: "missing input", body: #"{"model":"kling-3.0/video"}"#, field: "input"),
    .init(dialect: .market, name: "input is a string", body: #"{"model":"kling-3.0/video","input":"x"}"#, field: "input"),
    .init(dialect: .market, name: "single shot without prompt", body: market(#""duration":"5""#), field: "input.prompt"),
    .init(dialect: .market, name: "blank prompt", body: market(#""prompt":"   ""#), field: "input.prompt"),
    .init(dialect: .market, name: "prompt over 2500 characters", body: market("\"prompt\":\"\(longText)\""), field: "input.prompt"),
    .init(dialect: .market, name: "prompt is a number", body: market(#""prompt":5"#), field: "input.prompt"),
    .init(dialect: .market, name: "duration below 3", body: market(#""prompt":"p","duration":"2""#), field: "input.duration"),
    .init(dialect: .market, name: "duration above 15", body: market(#""prompt":"p","duration":"16""#), field: "input.duration"),
    .init(dialect: .market, name: "duration is a boolean", body: market(#""prompt":"p","duration":true"#), field: "input.duration"),
    .init(dialect: .market, name: "duration not a number", body: market(#""prompt":"p","duration":"five""#), field: "input.duration"),
    .init(dialect: .market, name: "unknown mode", body: market(#""prompt":"p","mode":"ultra""#), field: "input.mode"),
    .init(dialect: .market, name: "unknown aspect ratio", body: market(#""prompt":"p","aspect_ratio":"4:3""#), field: "input.aspect_ratio"),
    .init(dialect: .market, name: "sound is a string", body: market(#""prompt":"p","sound":"yes""#), field: "input.sound"),
    .init(dialect: .market, name: "multi_shots is a string", body: market(#""prompt":"p","multi_shots":"no""#), field: "input.multi_shots"),
    .init(
        dialect: .market, name: "three images in single shot", body: market("\"prompt\":\"p\",\"image_urls\":[\(img),\(img),\(img)]"),
        field: "input.image_urls"),
    .init(
        dialect: .market, name: "image URL not http", body: market(#""prompt":"p","image_urls":["ftp://x.test/a.png"]"#), field: "input.image_urls[0]"
    ),
    .init(
        dialect: .market, name: "image URL names a GIF", body: market(#""prompt":"p","image_urls":["https://x.test/a.png","https://x.test/b.GIF"]"#),
        field: "input.image_urls[1]"),
    .init(
        dialect: .market, name: "image URL names a WebP", body: market(#""prompt":"p","image_urls":["https://x.test/a.webp?x=1"]"#),
        field: "input.image_urls[0]"),
    .init(dialect: .market, name: "image URL is a number", body: market(#""prompt":"p","image_urls":[5]"#), field: "input.image_urls[0]"),
    .init(
        dialect: .market, name: "multi-shot without image",
        body: market(#""multi_shots":true,"duration":"5","multi_prompt":[{"prompt":"a","duration":5}]"#), field: "input.image_urls"),
    .init(
        dialect: .market, name: "multi-shot with two images",
        body: market("\"multi_shots\":true,\"image_urls\":[\(img),\(img)],\"duration\":\"5\",\"multi_prompt\":[{\"prompt\":\"a\",\"duration\":5}]"),
        field: "input.image_urls"),
    .init(
        dialect: .market, name: "multi-shot with sound false",
        body: market(
            "\"multi_shots\":true,\"sound\":false,\"image_urls\":[\(img)],\"duration\":\"5\",\"multi_prompt\":[{\"prompt\":\"a\",\"duration\":5}]"),
        field: "input.sound"),
    .init(
        dialect: .market, name: "multi-shot without shots", body: market("\"multi_shots\":true,\"image_urls\":[\(img)],\"duration\":\"5\""),
        field: "input.multi_prompt"),
    .init(
        dialect: .market, name: "seven shots",
        body: market(
            "\"multi_shots\":true,\"image_urls\":[\(img)],\"duration\":\"7\",\"multi_prompt\":["
                + Array(repeating: #"{"prompt":"a","duration":1}"#, count: 7).joined(separator: ",") + "]"), field: "input.multi_prompt"),
    .init(
        dialect: .market, name: "shot of 13 seconds",
        body: market(
            "\"multi_shots\":true,\"image_urls\":[\(img)],\"duration\":\"15\",\"multi_prompt\":[{\"prompt\":\"a\",\"duration\":13},{\"prompt\":\"b\",\"duration\":2}]"
        ), field: "input.multi_prompt[0].duration"),
    .init(
        dialect: .market, name: "shot of 0 seconds",
        body: market(
            "\"multi_shots\":true,\"image_urls\":[\(img)],\"duration\":\"5\",\"multi_prompt\":[{\"prompt\":\"a\",\"duration\":5},{\"prompt\":\"b\",\"duration\":0}]"
        ), field: "input.multi_prompt[1].duration"),
    .init(
        dialect: .market, name: "shot durations do not sum to duration (seed example)",
        body: market(
            "\"multi_shots\":true,\"image_urls\":[\(img)],\"duration\":\"5\",\"multi_prompt\":[{\"prompt\":\"a\",\"duration\":3},{\"prompt\":\"b\",\"duration\":3}]"
        ), field: "input.multi_prompt"),
    .init(
        dialect: .market, name: "shot prompt over 500 characters",
        body: market("\"multi_shots\":true,\"image_urls\":[\(img)],\"duration\":\"5\",\"multi_prompt\":[{\"prompt\":\"\(shot501)\",\"duration\":5}]"),
        field: "input.multi_prompt[0].prompt"),
    .init(
        dialect: .market, name: "shot without prompt",
        body: market("\"multi_shots\":true,\"image_urls\":[\(img)],\"duration\":\"5\",\"multi_prompt\":[{\"duration\":5}]"),
        field: "input.multi_prompt[0].prompt"),
    .init(
        dialect: .market, name: "shot is a string",
        body: market("\"multi_shots\":true,\"image_urls\":[\(img)],\"duration\":\"5\",\"multi_prompt\":[\"a\"]"), field: "input.multi_prompt[0]"),
    .init(
        dialect: .market, name: "four elements",
        body: market(
            "\"prompt\":\"p\",\"image_urls\":[\(img)],\"kling_elements\":["
                + (1...4).map { "{\"name\":\"e\($0)\",\"description\":\"d\",\"element_input_urls\":[\(img),\(img)]}" }.joined(separator: ",") + "]"),
        field: "input.kling_elements"),
    .init(
        dialect: .market, name: "element without name",
        body: market("\"prompt\":\"p\",\"kling_elements\":[{\"description\":\"d\",\"element_input_urls\":[\(img),\(img)]}]"),
        field: "input.kling_elements[0].name"),
    .init(
        dialect: .market, name: "element without description",
        body: market("\"prompt\":\"p\",\"kling_elements\":[{\"name\":\"dog\",\"element_input_urls\":[\(img),\(img)]}]"),
        field: "input.kling_elements[0].description"),
    .init(
        dialect: .market, name: "duplicate element names",
        body: market(
            "\"prompt\":\"p\",\"kling_elements\":[{\"name\":\"dog\",\"description\":\"d\",\"element_input_urls\":[\(img),\(img)]},{\"name\":\"dog\",\"description\":\"d\",\"element_input_urls\":[\(img),\(img)]}]"
        ), field: "input.kling_elements[1].name"),
    .init(
        dialect: .market, name: "element with one image",
        body: market("\"prompt\":\"p\",\"kling_elements\":[{\"name\":\"dog\",\"description\":\"d\",\"element_input_urls\":[\(img)]}]"),
        field: "input.kling_elements[0].element_input_urls"),
    .init(
        dialect: .market, name: "element with five images",
        body: market(
            "\"prompt\":\"p\",\"kling_elements\":[{\"name\":\"dog\",\"description\":\"d\",\"element_input_urls\":[\(img),\(img),\(img),\(img),\(img)]}]"
        ), field: "input.kling_elements[0].element_input_urls"),
    .init(
        dialect: .market, name: "element with images and a video",
        body: market(
            "\"prompt\":\"p\",\"kling_elements\":[{\"name\":\"dog\",\"description\":\"d\",\"element_input_urls\":[\(img),\(img)],\"element_input_video_urls\":[\"https://x.test/v.mp4\"]}]"
        ), field: "input.kling_elements[0]"),
    .init(
        dialect: .market, name: "element with two videos",
        body: market(
            "\"prompt\":\"p\",\"kling_elements\":[{\"name\":\"dog\",\"description\":\"d\",\"element_input_video_urls\":[\"https://x.test/v.mp4\",\"https://x.test/w.mp4\"]}]"
        ), field: "input.kling_elements[0].element_input_video_urls"),
    .init(
        dialect: .market, name: "element video names an AVI",
        body: market(
            "\"prompt\":\"p\",\"kling_elements\":[{\"name\":\"dog\",\"description\":\"d\",\"element_input_video_urls\":[\"https://x.test/v.avi\"]}]"),
        field: "input.kling_elements[0].element_input_video_urls[0]"),
    .init(
        dialect: .market, name: "element name with spaces",
        body: market("\"prompt\":\"p\",\"kling_elements\":[{\"name\":\"my dog\",\"description\":\"d\",\"element_input_urls\":[\(img),\(img)]}]"),
        field: "input.kling_elements[0].name"),
    .init(
        dialect: .market, name: "reference to an undefined element", body: market("\"prompt\":\"a @ghost walks\",\"image_urls\":[\(img)]"),
        field: "input.prompt"),
    .init(
        dialect: .market, name: "undefined element in a shot",
        body: market("\"multi_shots\":true,\"image_urls\":[\(img)],\"duration\":\"5\",\"multi_prompt\":[{\"prompt\":\"@ghost\",\"duration\":5}]"),
        field: "input.multi_prompt[0].prompt"),
    .init(
        dialect: .market, name: "element reference without image_urls",
        body: market("\"prompt\":\"@dog runs\",\"kling_elements\":[{\"name\":\"dog\",\"description\":\"d\",\"element_input_urls\":[\(img),\(img)]}]"),
        field: "input.image_urls"),
    .init(
        dialect: .market, name: "callback URL not a URL", body: #"{"model":"kling-3.0/video","callBackUrl":"not a url","input":{"prompt":"p"}}"#,
        field: "callBackUrl"),
    // CRUN (seed 000)
    .init(dialect: .crun, name: "malformed JSON", body: "{{", field: "body"),
    .init(dialect: .crun, name: "missing multi_shots", body: crun(#""prompt":"p""#), field: "input.multi_shots"),
    .init(
        dialect: .crun, name: "Market model name", body: crun(#""prompt":"p","multi_shots":false"#, model: #""model":"kling-3.0","#), field: "model"),
    .init(dialect: .crun, name: "single shot without prompt", body: crun(#""multi_shots":false,"duration":5"#), field: "input.prompt"),
    .init(dialect: .crun, name: "duration 20", body: crun(#""prompt":"p","multi_shots":false,"duration":20"#), field: "input.duration"),
    .init(dialect: .crun, name: "duration is fractional", body: crun(#""prompt":"p","multi_shots":false,"duration":5.5"#), field: "input.duration"),
    .init(dialect: .crun, name: "mode unknown", body: crun(#""prompt":"p","multi_shots":false,"mode":"8k""#), field: "input.mode"),
    .init(
        dialect: .crun, name: "unknown shot_type", body: crun("\"multi_shots\":true,\"shot_type\":\"auto\",\"prompt\":\"p\",\"img_urls\":[\(img)]"),
        field: "input.shot_type"),
    .init(
        dialect: .crun, name: "intelligence without prompt",
        body: crun("\"multi_shots\":true,\"shot_type\":\"intelligence\",\"img_urls\":[\(img)],\"duration\":5"), field: "input.prompt"),
    .init(
        dialect: .crun, name: "intelligence with multi_prompt",
        body: crun(
            "\"multi_shots\":true,\"shot_type\":\"intelligence\",\"prompt\":\"p\",\"img_urls\":[\(img)],\"duration\":5,\"multi_prompt\":[{\"prompt\":\"a\",\"duration\":5}]"
        ), field: "input.multi_prompt"),
    .init(
        dialect: .crun, name: "customize without multi_prompt",
        body: crun("\"multi_shots\":true,\"shot_type\":\"customize\",\"img_urls\":[\(img)],\"duration\":5"), field: "input.multi_prompt"),
    .init(
        dialect: .crun, name: "customize durations do not sum",
        body: crun(
            "\"multi_shots\":true,\"shot_type\":\"customize\",\"img_urls\":[\(img)],\"duration\":10,\"multi_prompt\":[{\"prompt\":\"a\",\"duration\":4},{\"prompt\":\"b\",\"duration\":4}]"
        ), field: "input.multi_prompt"),
    .init(
        dialect: .crun, name: "multi-shot with no image",
        body: crun("\"multi_shots\":true,\"shot_type\":\"customize\",\"duration\":5,\"multi_prompt\":[{\"prompt\":\"a\",\"duration\":5}]"),
        field: "input.img_urls"),
    .init(
        dialect: .crun, name: "three images in single shot", body: crun("\"prompt\":\"p\",\"multi_shots\":false,\"img_urls\":[\(img),\(img),\(img)]"),
        field: "input.img_urls"),
    .init(
        dialect: .crun, name: "element with no images",
        body: crun("\"prompt\":\"p\",\"multi_shots\":false,\"element_list\":[{\"name\":\"dog\",\"description\":\"d\",\"element_image_urls\":[]}]"),
        field: "input.element_list[0].element_image_urls"),
    .init(
        dialect: .crun, name: "element with five images",
        body: crun(
            "\"prompt\":\"p\",\"multi_shots\":false,\"element_list\":[{\"name\":\"dog\",\"description\":\"d\",\"element_image_urls\":[\(img),\(img),\(img),\(img),\(img)]}]"
        ), field: "input.element_list[0].element_image_urls"),
    .init(
        dialect: .crun, name: "four elements",
        body: crun(
            "\"prompt\":\"p\",\"multi_shots\":false,\"element_list\":["
                + (1...4).map { "{\"name\":\"e\($0)\",\"description\":\"d\",\"element_image_urls\":[\(img)]}" }.joined(separator: ",") + "]"),
        field: "input.element_list"),
    .init(
        dialect: .crun, name: "reference to an undefined element", body: crun(#""prompt":"@cat sleeps","multi_shots":false"#), field: "input.prompt"),
    .init(
        dialect: .crun, name: "bad input_compliance", body: crun(#""prompt":"p","multi_shots":false,"input_compliance":"maybe""#),
        field: "input.input_compliance"),
    .init(
        dialect: .crun, name: "callback URL not http",
        body: #"{"model":"kling/v3","callback_url":"javascript:alert(1)","input":{"prompt":"p","multi_shots":false}}"#, field: "callback_url"),
    .init(dialect: .crun, name: "audio is a number", body: crun(#""prompt":"p","multi_shots":false,"audio":1"#), field: "input.audio"),
]

@Suite("Validation through HTTP", .timeLimit(.minutes(3)))
struct ValidationTests {
    @Test(arguments: badRequests)
    func rejectsBadRequestWith422NamingTheField(_ bad: BadRequest) async throws {
        let server = try await TestServer.make()
        try await server.run { client in
            let answer = try await client.create(bad.dialect, body: bad.body, key: server.key)
            #expect(answer.status == 422, "\(answer.raw)")
            #expect(answer.code == 422)
            #expect(answer.message(bad.dialect).contains(bad.field + ":"), "message \(answer.message(bad.dialect)) should name \(bad.field)")
            #expect(answer.object.keys.contains("data"))
            #expect(try await server.totalTasks() == 0)
        }
    }

    @Test(arguments: [TestDialect.market, .crun])
    func rejectsBodiesOverOneMebibyteWith413(_ dialect: TestDialect) async throws {
        let server = try await TestServer.make()
        try await server.run { client in
            let big = "{\"model\":\"x\",\"pad\":\"" + String(repeating: "x", count: 1_100_000) + "\"}"
            let answer = try await client.create(dialect, body: big, key: server.key)
            #expect(answer.status == 413)
            #expect(answer.code == 413)
            #expect(answer.message(dialect).contains("body"))
            #expect(try await server.totalTasks() == 0)
        }
    }

    static let seedExamples: [(TestDialect, String)] = [
        // Seed 004's OpenAPI example body.
        (
            .market,
            #"{"model":"kling-3.0/video","callBackUrl":"https://your-domain.com/api/callback","input":{"prompt":"In a bright rehearsal room, sunlight streams through the window @element_dog","image_urls":["https://static.aiquickdraw.com/tools/example/1764851002741_i0lEiI8I.png"],"sound":true,"duration":"5","aspect_ratio":"16:9","mode":"pro","multi_shots":false,"multi_prompt":[{"prompt":"a happy dog in running @element_dog","duration":3},{"prompt":"a happy dog play with a cat @element_cat","duration":3}],"kling_elements":[{"name":"element_dog","description":"dog","element_input_urls":["https://tempfileb.aiquickdraw.com/kieai/market/1770361808044_4RfUUJrI.jpeg","https://tempfileb.aiquickdraw.com/kieai/market/1770361848336_ABQqRHBi.png"]},{"name":"element_cat","description":"cat","element_input_video_urls":["https://your-cdn.com/element_video.mp4"]}]}}"#
        ),
        // Seed 004's single-shot example.
        (
            .market,
            #"{"model":"kling-3.0","input":{"prompt":"In a bright rehearsal room, sunlight streams through the window @element_dog","image_urls":["https://static.aiquickdraw.com/tools/example/1764851002741_i0lEiI8I.png"],"sound":true,"duration":"5","aspect_ratio":"16:9","mode":"pro","multi_shots":false,"kling_elements":[{"name":"element_dog","description":"dog","element_input_urls":["https://tempfileb.aiquickdraw.com/kieai/market/1770361808044_4RfUUJrI.jpeg","https://tempfileb.aiquickdraw.com/kieai/market/1770361848336_ABQqRHBi.png"]}]}}"#
        ),
        // Seed 000: customize and intelligence multi-shot, single shot with elements and compliance flags.
        (
            .crun,
            #"{"model":"kling/v3","callback_url":"https://your-domain.com/api/callback","input":{"multi_shots":true,"shot_type":"customize","img_urls":["https://example.com/start.png"],"duration":8,"mode":"4K","multi_prompt":[{"prompt":"wide shot of a city","duration":3},{"prompt":"close up of @hero","duration":5}],"element_list":[{"name":"hero","description":"a hero","element_image_urls":["https://example.com/hero.jpg"]}]}}"#
        ),
        (
            .crun,
            #"{"model":"kling/v3","input":{"multi_shots":true,"shot_type":"intelligence","prompt":"A chase through a market. The thief escapes.","img_urls":["https://example.com/start.jpg"],"duration":10}}"#
        ),
        (
            .crun,
            #"{"model":"kling/v3","input":{"prompt":"a cat","multi_shots":false,"duration":5,"aspect_ratio":"9:16","mode":"std","audio":true,"input_compliance":"enabled","output_compliance":"disabled"}}"#
        ),
    ]

    @Test(arguments: 0..<seedExamples.count)
    func acceptsTheSeedsExampleBodies(_ index: Int) async throws {
        let (dialect, body) = Self.seedExamples[index]
        let server = try await TestServer.make()
        try await server.run { client in
            let answer = try await client.create(dialect, body: body, key: server.key)
            #expect(answer.status == 200, "\(answer.raw)")
            #expect(answer.code == 200)
            let id = try #require(answer.data?[dialect.idKey] as? String)
            #expect(try await server.store.task(id: id) != nil)
        }
    }
}
