import { existsSync } from "node:fs";

const DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/** drawtext's font option: DejaVu when installed (scripts/setup.sh installs it), else fontconfig's default. */
export const FONT_OPTION = existsSync(DEJAVU) ? `fontfile=${DEJAVU}` : "font=Sans";
