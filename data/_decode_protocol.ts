// Messages between DecodePool and its workers.

/** Main → worker: decode the file at `path`. */
export interface DecodeRequest {
  id: number;
  path: string;
}

/** Worker → main: the pixels (`[H, W, 3]` uint8, buffer transferred) or an error. */
export type DecodeReply =
  | { id: number; ok: true; width: number; height: number; data: ArrayBuffer }
  | {
    id: number;
    ok: false;
    /** The worker threw a DatasetError (a bad file), not some other error. */
    datasetError: boolean;
    message: string;
    cause?: string;
  };
