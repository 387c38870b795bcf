// A newly created API key, shown this once: the service keeps only its hash, so this is the only chance to copy it.
import { useEffect, useId, useRef, useState } from "react";

export function NewKeyPanel({ apiKey, owner, onDone }: { apiKey: string; owner?: string; onDone: () => void }) {
  const titleId = useId();
  const fieldId = useId();
  const copyButton = useRef<HTMLButtonElement>(null);
  const [copied, setCopied] = useState<string | null>(null);

  // Take the keyboard to the key at once: it is what needs doing next.
  useEffect(() => copyButton.current?.focus(), []);

  async function copy() {
    try {
      await navigator.clipboard.writeText(apiKey);
      setCopied("Copied to the clipboard.");
    } catch {
      // No clipboard (a page served over plain HTTP from another host): leave the key selected to copy by hand.
      const field = document.getElementById(fieldId);
      if (field instanceof HTMLInputElement) field.select();
      setCopied("Could not copy: the key is selected, copy it with your keyboard.");
    }
  }

  return (
    <dialog open className="panel new-key" aria-labelledby={titleId}>
      <h2 id={titleId}>{owner ? `New key for ${owner}` : "Your new key"}</h2>
      <p>
        <strong>Copy it now: it will not be shown again.</strong> The service keeps only a hash of it.
      </p>
      <div className="field">
        <label htmlFor={fieldId}>New API key</label>
        <div className="row">
          <input
            id={fieldId}
            className="mono grow"
            type="text"
            readOnly
            value={apiKey}
            onFocus={(event) => event.target.select()}
          />
          <button ref={copyButton} type="button" onClick={() => void copy()}>
            Copy
          </button>
        </div>
      </div>
      <p className="hint" role="status">
        {copied}
      </p>
      <button type="button" className="secondary" onClick={onDone}>
        Done
      </button>
    </dialog>
  );
}
