//! The List Blobs answer (XML), parsed by a small hand parser: only elements, text and the five
//! predefined entities plus character references occur in it, and a 16 MiB cap bounds it.
//! Shape: `EnumerationResults/Blobs/Blob/{Name, Properties/{Content-Length, Last-Modified},
//! Metadata/*}` and `EnumerationResults/NextMarker` (Microsoft's REST reference, "List Blobs",
//! Response body: https://learn.microsoft.com/rest/api/storageservices/list-blobs).
//!
//! Pure: bytes in, blobs and the next marker out.

use std::collections::BTreeMap;

use super::ListedBlob;

/// One page of List Blobs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    pub blobs: Vec<ListedBlob>,
    /// `NextMarker`, when not empty: more pages follow.
    pub next_marker: Option<String>,
}

/// Parses a List Blobs response body.
pub fn parse_list(body: &str) -> Result<ListPage, String> {
    let mut page = ListPage::default();
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut blob: Option<ListedBlob> = None;
    let mut saw_root = false;
    let mut rest = body;
    while let Some(lt) = rest.find('<') {
        text.push_str(&unescape(&rest[..lt])?);
        rest = &rest[lt..];
        // Declarations, comments and processing instructions carry nothing we need.
        if let Some(after) = rest.strip_prefix("<?") {
            rest = skip_past(after, "?>")?;
            continue;
        }
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = skip_past(after, "-->")?;
            continue;
        }
        if let Some(after) = rest.strip_prefix("<![CDATA[") {
            let end = after.find("]]>").ok_or("unterminated CDATA")?;
            text.push_str(&after[..end]);
            rest = &after[end + 3..];
            continue;
        }
        let gt = rest.find('>').ok_or("unterminated tag")?;
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim();
            let open = path.pop().ok_or("closing tag without an opening one")?;
            if open != name {
                return Err(format!("</{name}> closes <{open}>"));
            }
            end_element(&path, name, std::mem::take(&mut text), &mut blob, &mut page)?;
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name = tag.split_whitespace().next().ok_or("empty tag")?.to_owned();
        if path.is_empty() {
            if name != "EnumerationResults" {
                return Err(format!(
                    "root element is <{name}>, not <EnumerationResults>"
                ));
            }
            saw_root = true;
        }
        text.clear();
        if path.len() == 2 && path[1] == "Blobs" && name == "Blob" {
            blob = Some(ListedBlob {
                name: String::new(),
                size: 0,
                last_modified: None,
                metadata: BTreeMap::new(),
            });
        }
        if self_closing {
            end_element(&path, &name, String::new(), &mut blob, &mut page)?;
        } else {
            path.push(name);
        }
    }
    if !saw_root {
        return Err("no <EnumerationResults> element".to_owned());
    }
    if let Some(open) = path.last() {
        return Err(format!("<{open}> is not closed"));
    }
    Ok(page)
}

/// Files the text of the element `name` that just ended under `path`.
fn end_element(
    path: &[String],
    name: &str,
    text: String,
    blob: &mut Option<ListedBlob>,
    page: &mut ListPage,
) -> Result<(), String> {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match (p.as_slice(), name) {
        (["EnumerationResults"], "NextMarker") => {
            page.next_marker = Some(text).filter(|t| !t.is_empty());
        }
        (["EnumerationResults", "Blobs"], "Blob") => {
            let b = blob.take().ok_or("</Blob> without <Blob>")?;
            if b.name.is_empty() {
                return Err("a <Blob> without a <Name>".to_owned());
            }
            page.blobs.push(b);
        }
        (["EnumerationResults", "Blobs", "Blob"], "Name") => {
            if let Some(b) = blob {
                b.name = text;
            }
        }
        (["EnumerationResults", "Blobs", "Blob", "Properties"], "Content-Length") => {
            if let Some(b) = blob {
                b.size = text
                    .trim()
                    .parse()
                    .map_err(|_| format!("Content-Length {text:?} is not a size"))?;
            }
        }
        (["EnumerationResults", "Blobs", "Blob", "Properties"], "Last-Modified") => {
            if let Some(b) = blob {
                // RFC 1123 (`Mon, 07 Dec 2026 09:00:00 GMT`); an odd date is not worth
                // losing the blob over.
                b.last_modified = jiff::fmt::rfc2822::parse(text.trim())
                    .ok()
                    .map(|z| z.timestamp());
            }
        }
        (["EnumerationResults", "Blobs", "Blob", "Metadata"], key) => {
            if let Some(b) = blob {
                b.metadata.insert(key.to_ascii_lowercase(), text);
            }
        }
        _ => {}
    }
    Ok(())
}

fn skip_past<'a>(s: &'a str, end: &str) -> Result<&'a str, String> {
    s.find(end)
        .map(|i| &s[i + end.len()..])
        .ok_or_else(|| format!("no closing {end}"))
}

/// Replaces `&amp;` `&lt;` `&gt;` `&quot;` `&apos;` and `&#N;` / `&#xN;`.
fn unescape(s: &str) -> Result<String, String> {
    if !s.contains('&') {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after.find(';').ok_or("an & without ;")?;
        let entity = &after[..semi];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("unknown entity &{entity};"))?
            }
        };
        out.push(c);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The response-body shape of Microsoft's REST reference "List Blobs"
    /// (https://learn.microsoft.com/rest/api/storageservices/list-blobs, "Response body"),
    /// filled with example values: a blob with metadata, a property we ignore, a marker.
    const DOC_SHAPE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="https://myaccount.blob.core.windows.net/" ContainerName="mycontainer">
  <Prefix>hb/</Prefix>
  <Marker>string-value</Marker>
  <MaxResults>2</MaxResults>
  <Blobs>
    <Blob>
      <Name>hb/ws/ci-1</Name>
      <Snapshot />
      <Properties>
        <Creation-Time>Mon, 07 Dec 2026 08:00:00 GMT</Creation-Time>
        <Last-Modified>Mon, 07 Dec 2026 09:00:01 GMT</Last-Modified>
        <Etag>0x8CBFF45D8A29A19</Etag>
        <Content-Length>27</Content-Length>
        <Content-Type>application/json</Content-Type>
        <BlobType>BlockBlob</BlobType>
      </Properties>
      <Metadata>
        <Verdict>busy</Verdict>
        <note>a &amp; b &lt;c&gt; &#233;</note>
      </Metadata>
    </Blob>
    <Blob>
      <Name>hb/ws/ci-2 &amp; more</Name>
      <Properties><Content-Length>0</Content-Length></Properties>
      <Metadata />
    </Blob>
  </Blobs>
  <NextMarker>2!80!MDAwMDE2IWhiL3dzL2NpLTIhMDAwMDI4ITk5OTktMTItMzFUMjM6NTk6NTkuOTk5OTk5OVoh</NextMarker>
</EnumerationResults>"#;

    /// A List Blobs answer captured from Azurite 3.37.0 (`include=metadata&prefix=hb/`, curl,
    /// 2026-12-07): one line, `<Marker/>` and `<NextMarker/>` self-closing.
    const AZURITE: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><EnumerationResults ServiceEndpoint="https://127.0.0.1:47123/devstoreaccount1" ContainerName="heartbeats"><Prefix>hb/</Prefix><Marker/><MaxResults>5000</MaxResults><Blobs><Blob><Name>hb/one</Name><Properties><Creation-Time>Mon, 07 Dec 2026 09:52:19 GMT</Creation-Time><Last-Modified>Mon, 07 Dec 2026 09:52:19 GMT</Last-Modified><Etag>0x24A514611E82C20</Etag><Content-Length>5</Content-Length><Content-Type>text/plain</Content-Type><Content-MD5>XUFAKrxLKna5cZ2REBfFkg==</Content-MD5><BlobType>BlockBlob</BlobType><LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState><ServerEncrypted>true</ServerEncrypted><AccessTier>Hot</AccessTier><AccessTierInferred>true</AccessTierInferred><AccessTierChangeTime>Mon, 07 Dec 2026 09:52:19 GMT</AccessTierChangeTime></Properties><Metadata><verdict>idle</verdict></Metadata></Blob></Blobs><NextMarker/></EnumerationResults>"#;

    #[test]
    fn doc_shape_parses() {
        let page = parse_list(DOC_SHAPE).unwrap();
        assert_eq!(page.blobs.len(), 2);
        let b = &page.blobs[0];
        assert_eq!(b.name, "hb/ws/ci-1");
        assert_eq!(b.size, 27);
        assert_eq!(
            b.last_modified,
            Some("2026-12-07T09:00:01Z".parse().unwrap())
        );
        assert_eq!(b.metadata["verdict"], "busy");
        assert_eq!(b.metadata["note"], "a & b <c> é");
        assert_eq!(page.blobs[1].name, "hb/ws/ci-2 & more");
        assert!(page.blobs[1].metadata.is_empty());
        assert!(page.next_marker.as_deref().unwrap().starts_with("2!80!"));
    }

    #[test]
    fn azurite_answer_parses() {
        let page = parse_list(AZURITE).unwrap();
        assert_eq!(page.next_marker, None);
        assert_eq!(page.blobs.len(), 1);
        assert_eq!(page.blobs[0].name, "hb/one");
        assert_eq!(page.blobs[0].size, 5);
        assert_eq!(page.blobs[0].metadata["verdict"], "idle");
        assert_eq!(
            page.blobs[0].last_modified,
            Some("2026-12-07T09:52:19Z".parse().unwrap())
        );
    }

    #[test]
    fn empty_list_and_empty_marker() {
        let page = parse_list(
            "<EnumerationResults><Blobs /><NextMarker></NextMarker></EnumerationResults>",
        )
        .unwrap();
        assert_eq!(page, ListPage::default());
    }

    #[test]
    fn broken_answers_are_errors() {
        for bad in [
            "",
            "<Error><Code>x</Code></Error>",
            "<EnumerationResults><Blobs>",
            "<EnumerationResults></Blobs></EnumerationResults>",
            "<EnumerationResults><Blobs><Blob><Name>a</Name><Properties><Content-Length>x</Content-Length></Properties></Blob></Blobs></EnumerationResults>",
            "<EnumerationResults><Blobs><Blob><Name>a &bogus;</Name></Blob></Blobs></EnumerationResults>",
            "<EnumerationResults><Blobs><Blob></Blob></Blobs></EnumerationResults>",
        ] {
            assert!(parse_list(bad).is_err(), "{bad:?}");
        }
    }
}
